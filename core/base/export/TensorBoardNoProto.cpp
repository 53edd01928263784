// A build without protobuf (the GPU machine's build from bundled header-only dependencies): no TensorBoard
// logs. RunWriter asks tensorBoardBuilt() and writes none; the README says so.
#include "base/export/TensorBoard.h"

#include <stdexcept>

namespace graftlab {

bool tensorBoardBuilt() { return false; }

std::string serializeEvent(const TensorBoardEvent&) {
    throw std::runtime_error("this build has no TensorBoard support (protobuf was not found at configure time)");
}

TensorBoardEvent parseEvent(std::string_view) {
    throw std::runtime_error("this build has no TensorBoard support (protobuf was not found at configure time)");
}

}  // namespace graftlab
