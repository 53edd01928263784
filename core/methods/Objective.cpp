#include "methods/Objective.h"
#include "methods/ConMim.h"
#include "methods/Mae.h"
#include "methods/MocoV3.h"
#include "methods/Mtl.h"
#include "base/util/Errors.h"

namespace graftlab {

VitConfig vitConfigFrom(const Recipe& r, int channels) {
    VitConfig c;
    c.imageSize = r.data.imageSize;
    c.patchSize = r.model.patchSize;
    c.inChans = channels;
    c.embedDim = r.model.embedDim;
    c.depth = r.model.depth;
    c.numHeads = r.model.numHeads;
    c.mlpRatio = r.model.mlpRatio;
    return c;
}

std::shared_ptr<Objective> makeObjective(const Recipe& recipe, const std::string& method, int channels,
                                         std::vector<float> mean, std::vector<float> std) {
    if (method == "mae") return std::make_shared<MaeObjective>(recipe, channels, std::move(mean), std::move(std));
    if (method == "mocov3") return std::make_shared<MocoV3Objective>(recipe, channels, std::move(mean), std::move(std));
    if (method == "mtl") return std::make_shared<MtlObjective>(recipe, channels, std::move(mean), std::move(std));
    if (method == "conmim") return std::make_shared<ConMimObjective>(recipe, channels, std::move(mean), std::move(std));
    throw RecipeError("method", "unknown method \"" + method + "\"");
}

}  // namespace graftlab
