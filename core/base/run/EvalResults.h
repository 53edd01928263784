#pragma once
// Evaluation results as data, torch-free: what `eval`, a table and the GUI's Evaluate & compare write, and what
// the report, the Compare view and `eval` itself read back. checkpoints/eval.json of a run holds one entry per
// checkpoint file name, each an EvalReport's JSON; a later evaluation of the same checkpoint merges its protocols
// into the entry. This is the one reader and writer of that file.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace graftlab {

struct ProtocolResult {
    std::string protocol;    // linear, fewshot, knn, finetune
    double top1 = 0;         // test accuracy in [0, 1]
    nlohmann::json details;  // chosen lr, subset size, k, ...
};

struct EvalReport {
    std::string checkpoint, method, dataset, pooling;
    int64_t step = 0;
    int64_t trainImages = 0, testImages = 0;
    std::vector<ProtocolResult> results;
    // Why the accuracies cannot mean much (one class in the training split, test images also in it).
    std::vector<std::string> warnings;
    nlohmann::json toJson() const;
    // The inverse of toJson (results in kProtocols' order); throws nlohmann's errors on a malformed entry.
    static EvalReport fromJson(const nlohmann::json& j);
    const ProtocolResult* find(const std::string& protocol) const;
};

// A run's eval.json as read for display: every entry that is an object, its fields of the wrong type left at their
// defaults (step -1 when missing), its protocols without a numeric top1 left out; what was left out is named in
// `problems` ("FILE: not JSON, evaluations left out", "FILE: entry \"x\": ..."). A missing file holds no entry.
struct EvalFile {
    std::vector<std::pair<std::string, EvalReport>> entries;  // checkpoint file name -> its results, by name
    std::vector<std::string> problems;
    // The entry of the newest evaluated checkpoint (highest step among the entries with a result; nullptr: none).
    const std::pair<std::string, EvalReport>* newest() const;
    static EvalFile read(const std::string& path);
};

// Merges `report` into the eval.json beside its checkpoint (RunLayout::evalJsonBeside), protocol by protocol;
// returns that file's path. An unreadable file is replaced.
std::string writeEvalJson(const EvalReport& report);

}  // namespace graftlab
