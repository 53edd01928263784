#pragma once
// TensorBoard event files, written live into a run directory (RUN/tensorboard/), so that
// `tensorboard --logdir runs/` shows GraftLab runs beside PyTorch ones.
//
// A file is a sequence of TFRecords: uint64 length (little-endian), uint32 masked CRC-32C of those 8 bytes,
// the payload (one serialized Event), uint32 masked CRC-32C of the payload. masked(c) = ((c >> 15) | (c << 17))
// + 0xa282ead8. The first record of a file is an Event with file_version "brain.Event:2". The messages are in
// tensorboard.proto (TensorBoard's field numbers), serialized with Debian's protobuf.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace graftlab {

// False in a build without protobuf (then no run writes TensorBoard logs).
bool tensorBoardBuilt();

// CRC-32C (Castagnoli, reflected, polynomial 0x82f63b78), as TFRecord uses it.
uint32_t crc32c(std::string_view bytes);
uint32_t maskedCrc32c(std::string_view bytes);
// One framed record around `payload`.
std::string frameRecord(std::string_view payload);
// The payloads of the records in `bytes`, in order. Stops at the first torn or corrupt record (a run killed
// mid-write); `goodBytes` (if given) receives how many bytes the complete records span.
std::vector<std::string> readRecords(std::string_view bytes, size_t* goodBytes = nullptr);

// What one event holds, as plain values (for tests and tools; the writer serializes these).
struct TensorBoardEvent {
    double wallTime = 0;
    int64_t step = 0;
    std::string fileVersion;                               // set on a file's first event only
    std::vector<std::pair<std::string, float>> scalars;    // tag, value
    struct Image { std::string tag; int width = 0, height = 0, channels = 3; std::string png; };
    std::vector<Image> images;
    std::vector<std::pair<std::string, std::string>> texts;  // tag, markdown
};
std::string serializeEvent(const TensorBoardEvent& e);
// Throws std::runtime_error when the bytes are not an Event.
TensorBoardEvent parseEvent(std::string_view bytes);

// The tensorboard/ directory of a run. Appends to one event file (created on first use; an existing one is
// continued). Every event is one write(): a reader tailing the file, or a kill, sees whole records (a torn
// tail is dropped on the next open). Write errors are reported once through `onError` and the log is then
// switched off: a full disk must not end a training run that checkpoints elsewhere.
class TensorBoardLog {
public:
    explicit TensorBoardLog(std::string dir);
    ~TensorBoardLog();
    TensorBoardLog(const TensorBoardLog&) = delete;
    TensorBoardLog& operator=(const TensorBoardLog&) = delete;

    const std::string& dir() const { return dir_; }
    const std::string& file() const { return file_; }
    bool enabled() const { return fd_ >= 0; }
    const std::string& error() const { return error_; }

    void scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values);
    void image(int64_t step, const std::string& tag, const std::string& png, int width, int height, int channels);
    void text(int64_t step, const std::string& tag, const std::string& markdown);
    void write(const TensorBoardEvent& e);
    // Drops every event after `step` from the directory's event files (resuming from an earlier checkpoint:
    // the steps after it are trained again and must not appear twice). Rewrites the files atomically.
    void truncateAfter(int64_t step);

    // Every event of every event file in `dir`, files in name order (as TensorBoard reads them).
    static std::vector<TensorBoardEvent> readDir(const std::string& dir);
    static std::vector<std::string> eventFiles(const std::string& dir);

private:
    void open();
    void fail(const std::string& what);
    std::string dir_, file_, error_;
    int fd_ = -1;
};

}  // namespace graftlab
