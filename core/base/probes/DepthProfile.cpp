#include "base/probes/DepthProfile.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

namespace graftlab {

namespace {
std::string num(double v) {
    if (!std::isfinite(v)) return "";
    std::ostringstream os;
    os.precision(6);
    os << v;
    return os.str();
}
}  // namespace

DepthProfile depthProfile(const std::vector<Snapshot>& all, int phaseCount) {
    DepthProfile p;
    std::vector<const Snapshot*> snaps;
    for (const auto& s : all)
        if (s.kind == "gradcos" && s.unavailable().empty() && s.find("summary")) snaps.push_back(&s);
    if (snaps.empty()) return p;
    std::sort(snaps.begin(), snaps.end(), [](const Snapshot* a, const Snapshot* b) { return a->step < b->step; });
    const auto groups = snaps.back()->meta.value("groups", std::vector<std::string>{});
    std::vector<size_t> keep;  // group indices without the whole-encoder total
    for (size_t g = 0; g < groups.size(); ++g)
        if (groups[g] != "encoder") {
            keep.push_back(g);
            p.groups.push_back(groups[g]);
        }
    // Phases: the stages when there are several, else equal spans of the probed steps.
    std::vector<int> phaseOf(snaps.size());
    std::vector<std::string> labels;
    const bool byStage = snaps.front()->stage != snaps.back()->stage;
    if (byStage) {
        std::map<int, int> index;
        for (size_t i = 0; i < snaps.size(); ++i) {
            auto it = index.find(snaps[i]->stage);
            if (it == index.end()) it = index.emplace(snaps[i]->stage, int(index.size())).first;
            phaseOf[i] = it->second;
        }
        phaseCount = int(index.size());
    } else {
        phaseCount = std::max(1, std::min<int>(phaseCount, int(snaps.size())));
        const double lo = double(snaps.front()->step), hi = double(snaps.back()->step);
        for (size_t i = 0; i < snaps.size(); ++i)
            phaseOf[i] = hi > lo ? std::min(phaseCount - 1, int((double(snaps[i]->step) - lo) / (hi - lo) * phaseCount)) : 0;
    }
    for (int ph = 0; ph < phaseCount; ++ph) {
        DepthProfilePhase out;
        const size_t G = keep.size();
        std::vector<double> sm(G, 0), s10(G, 0), s90(G, 0), sb(G, 0);
        std::vector<int> n(G, 0), nb(G, 0);
        for (size_t i = 0; i < snaps.size(); ++i) {
            if (phaseOf[i] != ph) continue;
            const Snapshot& s = *snaps[i];
            if (out.snapshots == 0) out.firstStep = s.step;
            out.lastStep = s.step;
            ++out.snapshots;
            const SnapshotArray& sum = *s.find("summary");
            const SnapshotArray* batch = s.find("batch_cos");
            for (size_t k = 0; k < G; ++k) {
                int64_t g = int64_t(keep[k]);
                if (g >= sum.shape[0] || !std::isfinite(sum.at({g, kCosMean}))) continue;
                sm[k] += sum.at({g, kCosMean});
                s10[k] += sum.at({g, kCosQ10});
                s90[k] += sum.at({g, kCosQ90});
                ++n[k];
                if (batch && g < batch->shape[0] && std::isfinite(batch->values[size_t(g)])) {
                    sb[k] += batch->values[size_t(g)];
                    ++nb[k];
                }
            }
            if (byStage) out.label = "stage " + std::to_string(s.stage + 1);
        }
        if (out.snapshots == 0) continue;
        for (size_t k = 0; k < G; ++k) {
            out.mean.push_back(n[k] ? sm[k] / n[k] : NAN);
            out.q10.push_back(n[k] ? s10[k] / n[k] : NAN);
            out.q90.push_back(n[k] ? s90[k] / n[k] : NAN);
            out.batch.push_back(nb[k] ? sb[k] / nb[k] : NAN);
        }
        std::string span = out.firstStep == out.lastStep ? "step " + std::to_string(out.firstStep)
                                                         : "steps " + std::to_string(out.firstStep) + "–" + std::to_string(out.lastStep);
        out.label = out.label.empty() ? span : out.label + ", " + span;
        p.phases.push_back(out);
    }
    return p;
}

std::string depthProfileCsv(const DepthProfile& p) {
    std::ostringstream o;
    o << "phase,first_step,last_step,probes,group,depth,mean,q10,q90,batch_cos\n";
    for (const auto& ph : p.phases)
        for (size_t g = 0; g < p.groups.size(); ++g)
            o << '"' << ph.label << "\"," << ph.firstStep << ',' << ph.lastStep << ',' << ph.snapshots << ',' << p.groups[g] << ',' << g << ','
              << num(ph.mean[g]) << ',' << num(ph.q10[g]) << ',' << num(ph.q90[g]) << ',' << num(ph.batch[g]) << '\n';
    return o.str();
}

}  // namespace graftlab
