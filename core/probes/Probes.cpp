#include "probes/Probes.h"
#include "data/Augment.h"
#include "model/Patchify.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace graftlab {
namespace F = torch::nn::functional;

namespace {
constexpr int64_t kMaxPerBlockSimilarityValues = 2'000'000;  // 8 MB of float32 per snapshot at most
constexpr uint64_t kProbeViewSeed = 0x50524f42;  // the fixed contrastive views of the gradient-cosine probe

// Restores requires_grad flags and BatchNorm statistics the probes must not disturb.
struct GradFlagGuard {
    std::vector<std::pair<torch::Tensor, bool>> saved;
    explicit GradFlagGuard(const std::vector<torch::Tensor>& params) {
        for (const auto& p : params) {
            saved.emplace_back(p, p.requires_grad());
            p.set_requires_grad(true);
        }
    }
    ~GradFlagGuard() {
        for (auto& [p, flag] : saved) p.set_requires_grad(flag);
    }
};
struct BufferGuard {
    std::vector<std::pair<torch::Tensor, torch::Tensor>> saved;
    explicit BufferGuard(torch::nn::Module& m) {
        for (auto& b : m.named_buffers(true)) saved.emplace_back(b.value(), b.value().detach().clone());
    }
    ~BufferGuard() {
        torch::NoGradGuard ng;
        for (auto& [b, copy] : saved) b.copy_(copy);
    }
};
struct EvalGuard {
    torch::nn::Module& m;
    bool was;
    explicit EvalGuard(torch::nn::Module& mod) : m(mod), was(mod.is_training()) { m.eval(); }
    ~EvalGuard() { m.train(was); }
};

}  // namespace

SnapshotArray toArray(const std::string& name, const torch::Tensor& t) {
    auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    SnapshotArray a;
    a.name = name;
    a.shape.assign(c.sizes().begin(), c.sizes().end());
    a.values.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    return a;
}

ProbeHeads findProbeHeads(Objective& current, Objective* previous, const std::string& previousName) {
    ProbeHeads h;
    auto take = [&](Objective& o, const std::string& originPrefix, bool frozen) {
        std::string suffix = frozen ? " (as it was at the end of that stage)" : "";
        ObjectiveHeads parts = o.heads();
        if (!h.mim && parts.mimDecoder)
            h.mim = MimHead{MaeDecoder(parts.mimDecoder), parts.mae, parts.patchSize, originPrefix + " MAE decoder" + suffix};
        if (!h.cl && parts.clHeads) h.cl = ClHead{MocoHeads(parts.clHeads), originPrefix + " MoCo v3 heads" + suffix};
    };
    take(current, "this stage's", false);
    if (previous) take(*previous, previousName + "'s", true);
    std::string where = current.methodName() + (previous ? " (and " + previousName + ", " + previous->methodName() + ")" : "");
    if (!h.mim) h.mimMissing = "no MIM head: " + (current.mimHeadAbsent.empty() ? where + " has no MAE decoder" : current.mimHeadAbsent);
    if (!h.cl) h.clMissing = "no CL head: " + where + " has no MoCo v3 heads";
    return h;
}

torch::Tensor mimLossPerSample(VisionTransformer& encoder, MimHead head, const torch::Tensor& x, const MaskSample& mask) {
    auto pred = maePredict(encoder, head.decoder, x, mask);
    return maeLossPerSample(x, pred, mask.mask, head.patchSize, head.cfg.normPixLoss);
}

torch::Tensor clLossPerSample(VisionTransformer& encoder, ClHead head, const torch::Tensor& v1, const torch::Tensor& v2) {
    return head.heads->perSampleLoss(encoder, v1, v2);
}

std::vector<std::pair<std::string, std::vector<torch::Tensor>>> encoderParameterGroups(VisionTransformer& encoder) {
    std::vector<std::pair<std::string, std::vector<torch::Tensor>>> groups;
    groups.emplace_back("embed", std::vector<torch::Tensor>{});
    for (int64_t b = 0; b < int64_t(encoder->blocks->size()); ++b)
        groups.emplace_back("blocks." + std::to_string(b), std::vector<torch::Tensor>{});
    groups.emplace_back("norm", std::vector<torch::Tensor>{});
    std::vector<torch::Tensor> all;
    for (auto& p : encoder->named_parameters(true)) {
        const std::string& name = p.key();
        all.push_back(p.value());
        // embed (patch_embed.*, cls_token), blocks.0 ..., norm: the groups are the layers of vitLayerId
        const int depth = int(encoder->blocks->size());
        groups[size_t(std::min(vitLayerId(name, depth), depth + 1))].second.push_back(p.value());
    }
    groups.emplace_back("encoder", all);
    return groups;
}

namespace {
// The encoder's parameter groups, every parameter once (`all`, the "encoder" group) and the group of each.
struct GroupMap {
    std::vector<std::pair<std::string, std::vector<torch::Tensor>>> groups;
    std::vector<torch::Tensor> all;
    std::vector<size_t> groupOf;
};

GroupMap groupMap(VisionTransformer& encoder) {
    GroupMap m;
    m.groups = encoderParameterGroups(encoder);
    m.all = m.groups.back().second;
    m.groupOf.assign(m.all.size(), 0);
    for (size_t g = 0; g + 1 < m.groups.size(); ++g)
        for (const auto& p : m.groups[g].second)
            for (size_t j = 0; j < m.all.size(); ++j)
                if (m.all[j].is_same(p)) m.groupOf[j] = g;
    return m;
}

// Cosines per group (the last: all parameters) of two gradients given per parameter (undefined = zero).
std::vector<double> groupCosines(const GroupMap& m, const std::vector<torch::Tensor>& ga, const std::vector<torch::Tensor>& gb) {
    std::vector<torch::Tensor> dots, na, nb;
    for (size_t j = 0; j < m.all.size(); ++j) {
        auto zero = torch::zeros({}, m.all[j].options().dtype(torch::kFloat64));
        bool a = ga[j].defined(), b = gb[j].defined();
        dots.push_back(a && b ? (ga[j].to(torch::kFloat64) * gb[j].to(torch::kFloat64)).sum() : zero);
        na.push_back(a ? ga[j].to(torch::kFloat64).pow(2).sum() : zero);
        nb.push_back(b ? gb[j].to(torch::kFloat64).pow(2).sum() : zero);
    }
    auto s = torch::stack({torch::stack(dots), torch::stack(na), torch::stack(nb)}).cpu();
    auto sa = s.accessor<double, 2>();
    const size_t G = m.groups.size();
    std::vector<double> dot(G, 0), a2(G, 0), b2(G, 0), c(G, std::nan(""));
    for (size_t j = 0; j < m.all.size(); ++j) {
        for (size_t g : {m.groupOf[j], G - 1}) {
            dot[g] += sa[0][int64_t(j)];
            a2[g] += sa[1][int64_t(j)];
            b2[g] += sa[2][int64_t(j)];
        }
    }
    for (size_t g = 0; g < G; ++g)
        if (a2[g] > 0 && b2[g] > 0) c[g] = dot[g] / std::sqrt(a2[g] * b2[g]);
    return c;
}
}  // namespace

void GradSums::add(const std::vector<torch::Tensor>& ga, const std::vector<torch::Tensor>& gb) {
    if (a.empty()) {
        a.resize(ga.size());
        b.resize(gb.size());
    }
    auto accumulate = [](std::vector<torch::Tensor>& sum, const std::vector<torch::Tensor>& g) {
        for (size_t j = 0; j < g.size(); ++j) {
            if (!g[j].defined()) continue;
            auto d = g[j].detach().to(torch::kFloat64);
            sum[j] = sum[j].defined() ? sum[j] + d : d;
        }
    };
    accumulate(a, ga);
    accumulate(b, gb);
}

GradCosResult gradientCosines(VisionTransformer& encoder, const std::function<torch::Tensor()>& lossA,
                              const std::function<torch::Tensor()>& lossB, GradSums* sums) {
    GroupMap m = groupMap(encoder);
    const auto& all = m.all;
    GradFlagGuard flags(all);
    torch::Tensor la = lossA(), lb = lossB();
    TORCH_CHECK(la.dim() == 1 && lb.sizes() == la.sizes(), "per-sample losses must be two vectors of one length");
    const int64_t n = la.size(0);
    const size_t G = m.groups.size();
    auto result = torch::full({int64_t(G), n}, std::nan(""), torch::kFloat64);
    auto acc = result.accessor<double, 2>();
    for (int64_t i = 0; i < n; ++i) {
        auto ga = torch::autograd::grad({la[i]}, all, {}, /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true);
        auto gb = torch::autograd::grad({lb[i]}, all, {}, /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true);
        auto c = groupCosines(m, ga, gb);
        for (size_t g = 0; g < G; ++g) acc[int64_t(g)][i] = c[g];
    }
    // The whole-batch cosine: the gradients of the two summed (equivalently, mean) losses, what one optimiser step
    // on the batch sees. With `sums`, they are also added up over several calls (a probe in chunks).
    auto ga = torch::autograd::grad({la.sum()}, all, {}, /*retain_graph=*/true, /*create_graph=*/false, /*allow_unused=*/true);
    auto gb = torch::autograd::grad({lb.sum()}, all, {}, /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
    auto batch = groupCosines(m, ga, gb);
    if (sums) sums->add(ga, gb);
    GradCosResult r;
    for (const auto& g : m.groups) r.groups.push_back(g.first);
    r.cos = result.to(torch::kFloat32);
    r.batchCos = torch::tensor(std::vector<double>(batch.begin(), batch.end()), torch::kFloat64).to(torch::kFloat32);
    return r;
}

torch::Tensor summedGradientCosines(VisionTransformer& encoder, const GradSums& sums) {
    GroupMap m = groupMap(encoder);
    std::vector<torch::Tensor> a = sums.a, b = sums.b;
    a.resize(m.all.size());
    b.resize(m.all.size());
    auto c = groupCosines(m, a, b);
    return torch::tensor(std::vector<double>(c.begin(), c.end()), torch::kFloat64).to(torch::kFloat32);
}

torch::Tensor attentionRollout(const std::vector<torch::Tensor>& attn) {
    TORCH_CHECK(!attn.empty(), "attention rollout needs at least one block");
    const int64_t N = attn[0].size(-1);
    auto eye = torch::eye(N, attn[0].options());
    torch::Tensor rollout;
    for (const auto& a : attn) {
        auto aug = 0.5 * a + 0.5 * eye;
        aug = aug / aug.sum(-1, true);
        rollout = rollout.defined() ? torch::bmm(aug, rollout) : aug;
    }
    return rollout;
}

torch::Tensor patchCosineSimilarity(VisionTransformer& encoder, const torch::Tensor& x, int block) {
    torch::NoGradGuard ng;
    const int depth = int(encoder->blocks->size());
    const int last = block < 0 ? depth - 1 : std::min(block, depth - 1);
    auto t = encoder->prependClassToken(encoder->embedPatches(x));
    for (int b = 0; b <= last; ++b) t = encoder->blocks[size_t(b)]->as<Block>()->forward(t);
    if (block < 0) t = encoder->norm(t);
    auto p = F::normalize(t.slice(1, 1), F::NormalizeFuncOptions().dim(-1));
    return torch::bmm(p, p.transpose(1, 2));
}

std::vector<double> cosineSummary(const std::vector<float>& values) {
    std::vector<double> v;
    for (float x : values)
        if (std::isfinite(x)) v.push_back(x);
    if (v.empty()) return std::vector<double>(kCosineSummaryColumns.size(), std::nan(""));
    std::sort(v.begin(), v.end());
    auto q = [&](double f) {
        double pos = f * double(v.size() - 1);
        size_t lo = size_t(std::floor(pos)), hi = size_t(std::ceil(pos));
        return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
    };
    double mean = 0, neg = 0;
    for (double x : v) {
        mean += x;
        neg += x < 0;
    }
    std::vector<double> out(kCosineSummaryColumns.size());
    out[kCosMean] = mean / double(v.size());
    out[kCosQ10] = q(0.1);
    out[kCosQ25] = q(0.25);
    out[kCosMedian] = q(0.5);
    out[kCosQ75] = q(0.75);
    out[kCosQ90] = q(0.9);
    out[kCosFracNegative] = neg / double(v.size());
    return out;
}

ProbeImages pickProbeImages(const Dataset& data, int n) {
    ProbeImages p;
    const int64_t size = data.size();
    n = int(std::min<int64_t>(n, size));
    for (int i = 0; i < n; ++i) p.indices.push_back(int64_t(i) * size / n);
    auto idx = torch::tensor(p.indices, torch::kInt64);
    p.images01 = data.images.index_select(0, idx).to(torch::kFloat32) / 255.0;
    if (data.labels.defined()) {
        auto l = data.labels.index_select(0, idx);
        for (int64_t i = 0; i < l.size(0); ++i) p.labels.push_back(l[i].item<int64_t>());
    }
    return p;
}

ProbeRunner::ProbeRunner(const Recipe& recipe, const Dataset& data, torch::Device device)
    : recipe_(recipe), cfg_(recipe.probes), images_(pickProbeImages(data, recipe.probes.samples)),
      gradImages_(pickProbeImages(data, recipe.probes.gradcosSamples)), mean_(data.mean), std_(data.std), device_(device),
      maskSeed_(kProbeMaskSeed) {}

Snapshot ProbeRunner::base(const std::string& kind, int64_t step, int stage) const {
    Snapshot s;
    s.kind = kind;
    s.step = step;
    s.stage = stage;
    s.meta["image_indices"] = images_.indices;
    s.meta["labels"] = images_.labels;
    s.meta["patch_size"] = recipe_.model.patchSize;
    s.meta["grid"] = recipe_.gridSize();
    return s;
}

Snapshot ProbeRunner::gradcos(int64_t step, int stage, Objective& current, Objective* previous, const std::string& previousName) {
    Snapshot s = base("gradcos", step, stage);
    ProbeHeads heads = findProbeHeads(current, previous, previousName);
    if (!heads.mim || !heads.cl) {
        s.meta["unavailable"] = "the gradient cosine needs a MIM and a CL loss on one encoder: " +
                                (!heads.mim ? heads.mimMissing : heads.clMissing) +
                                " (MTL has both; grafting stages borrow the other head from the stage before)";
        return s;
    }
    const int64_t total = gradImages_.images01.size(0);
    const int64_t chunk = std::max<int64_t>(2, cfg_.samples);
    if (total < 2) {
        s.meta["unavailable"] = "the gradient cosine needs at least 2 probe images (probes.gradcos_samples): the CL loss contrasts them";
        return s;
    }
    auto encoder = current.encoder();
    // The CL heads' BatchNorm uses its running statistics here (MocoHeadsImpl::perSampleLoss), so each image's
    // loss is its own; the guard keeps every buffer as it was all the same.
    BufferGuard keepStats(*heads.cl->heads);
    // probes.gradcos_samples images in chunks of probes.samples (the CL loss contrasts the images of a chunk); each
    // chunk its own fixed mask and views; the whole-probe cosine from the gradients summed over the chunks.
    std::vector<torch::Tensor> cosParts, mimParts, clParts;
    std::vector<std::string> groups;
    GradSums sums;
    std::vector<std::pair<int64_t, int64_t>> spans;
    for (int64_t c0 = 0; c0 < total; c0 += chunk) spans.emplace_back(c0, std::min(total, c0 + chunk));
    if (spans.size() > 1 && spans.back().second - spans.back().first < 2) {  // a last chunk of one image joins the one before
        spans[spans.size() - 2].second = total;
        spans.pop_back();
    }
    for (size_t c = 0; c < spans.size(); ++c) {
        auto imgs = gradImages_.images01.slice(0, spans[c].first, spans[c].second).to(device_);
        auto x = normalizeImages(imgs, mean_, std_);
        at::Generator gen = at::detail::createCPUGenerator(kProbeMaskSeed + uint64_t(c));
        auto mask = randomMasking(x.size(0), encoder->cfg.numPatches(), heads.mim->cfg.maskRatio, gen, x.device());
        std::mt19937_64 rng(kProbeViewSeed + uint64_t(c));
        auto views = contrastiveViews(imgs.cpu(), recipe_.augment, mean_, std_, rng);
        auto v1 = views[0].to(device_), v2 = views[1].to(device_);
        torch::Tensor mimLosses, clLosses;
        GradCosResult part = gradientCosines(
            encoder,
            [&] { return mimLosses = mimLossPerSample(encoder, *heads.mim, x, mask); },
            [&] { return clLosses = clLossPerSample(encoder, *heads.cl, v1, v2); }, &sums);
        cosParts.push_back(part.cos);
        mimParts.push_back(mimLosses.detach());
        clParts.push_back(clLosses.detach());
        groups = part.groups;
    }
    GradCosResult r;
    r.groups = groups;
    r.cos = torch::cat(cosParts, 1);
    r.batchCos = summedGradientCosines(encoder, sums);
    torch::Tensor mimLosses = torch::cat(mimParts), clLosses = torch::cat(clParts);
    s.meta["image_indices"] = gradImages_.indices;
    s.meta["labels"] = gradImages_.labels;
    s.arrays.push_back(toArray("cos", r.cos));
    s.arrays.push_back(toArray("batch_cos", r.batchCos));
    std::vector<float> summary;
    auto cosCpu = r.cos.contiguous();
    for (int64_t g = 0; g < cosCpu.size(0); ++g) {
        auto row = cosCpu[g];
        std::vector<float> vals(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
        for (double v : cosineSummary(vals)) summary.push_back(float(v));
    }
    SnapshotArray sum;
    sum.name = "summary";
    sum.shape = {cosCpu.size(0), int64_t(kCosineSummaryColumns.size())};
    sum.values = summary;
    s.arrays.push_back(sum);
    s.arrays.push_back(toArray("mim_loss", mimLosses));
    s.arrays.push_back(toArray("cl_loss", clLosses));
    s.meta["groups"] = r.groups;
    s.meta["summary_columns"] = kCosineSummaryColumns;
    s.meta["mim_head"] = heads.mim->origin;
    s.meta["cl_head"] = heads.cl->origin;
    s.meta["note"] = "MIM: the probe images, no crop, one fixed mask; CL: two fixed augmented views, the heads' BatchNorm "
                     "with its running statistics (each image's loss its own); cos(grad L_MIM(x), grad L_CL(x)) per image and "
                     "parameter group; batch_cos: the same for the mean losses over the probe images";
    return s;
}

Snapshot ProbeRunner::attention(int64_t step, int stage, Objective& current) {
    Snapshot s = base("attention", step, stage);
    torch::NoGradGuard ng;
    auto encoder = current.encoder();
    EvalGuard eval(*encoder);
    auto imgs = images_.images01.to(device_);
    auto x = normalizeImages(imgs, mean_, std_);
    std::vector<Attention> attns;
    for (const auto& b : *encoder->blocks) {
        auto a = b->as<Block>()->attn;
        a->recordAttention = true;
        attns.push_back(a);
    }
    encoder->forward(x);
    std::vector<torch::Tensor> cls, meanHeads;
    for (auto& a : attns) {
        cls.push_back(a->lastAttention.select(2, 0).slice(2, 1));  // (n, heads, L): class token to every patch
        meanHeads.push_back(a->lastAttention.mean(1));
        a->recordAttention = false;
        a->lastAttention = torch::Tensor();
    }
    auto rollout = attentionRollout(meanHeads).select(1, 0).slice(1, 1);  // (n, L)
    s.arrays.push_back(toArray("images", imgs));
    s.arrays.push_back(toArray("cls_attention", torch::stack(cls)));  // (depth, n, heads, L)
    s.arrays.push_back(toArray("rollout", rollout));
    s.meta["heads"] = encoder->cfg.numHeads;
    s.meta["depth"] = encoder->cfg.depth;
    s.meta["note"] = "class-token attention rows without the class token itself (rows summed to 1 with it); "
                     "rollout: head mean + identity, renormalised, multiplied over blocks";
    return s;
}

Snapshot ProbeRunner::similarity(int64_t step, int stage, Objective& current, int block, double temperature) {
    if (block < -1) block = cfg_.similarityBlock;
    if (temperature <= 0) temperature = cfg_.similarityTemperature;
    Snapshot s = base("similarity", step, stage);
    torch::NoGradGuard ng;
    auto encoder = current.encoder();
    EvalGuard eval(*encoder);
    auto imgs = images_.images01.to(device_);
    auto x = normalizeImages(imgs, mean_, std_);
    s.arrays.push_back(toArray("images", imgs));
    s.arrays.push_back(toArray("cosine", patchCosineSimilarity(encoder, x, block)));
    // Every block's similarity too, when small enough to keep (a block selector in the GUI): [depth, N, K, K].
    {
        const int64_t depth = int64_t(encoder->blocks->size()), n = x.size(0), k = encoder->cfg.numPatches();
        if (depth * n * k * k <= kMaxPerBlockSimilarityValues) {
            std::vector<torch::Tensor> perBlock;
            auto t = encoder->prependClassToken(encoder->embedPatches(x));
            for (int64_t b = 0; b < depth; ++b) {
                t = encoder->blocks[size_t(b)]->as<Block>()->forward(t);
                auto p = F::normalize(t.slice(1, 1), F::NormalizeFuncOptions().dim(-1));
                perBlock.push_back(torch::bmm(p, p.transpose(1, 2)));
            }
            s.arrays.push_back(toArray("cosine_blocks", torch::stack(perBlock)));
        } else {
            s.meta["blocks_note"] = "per-block similarity not stored (" + std::to_string(depth * n * k * k) +
                                    " values); probes.similarity_block chooses the one block";
        }
    }
    s.meta["block"] = block;
    s.meta["block_label"] = block < 0 ? "last block + final norm" : "output of block " + std::to_string(block);
    s.meta["temperature"] = temperature;
    {
        EvalGuard evalAll(current);
        at::Generator gen = at::detail::createCPUGenerator(kProbeMaskSeed);
        Objective::PatchLookup look = current.patchLookup(x, gen, temperature);
        if (look.lookup.defined()) {
            s.arrays.push_back(toArray("lookup", look.lookup));
            s.arrays.push_back(toArray("lookup_mask", look.mask));
            s.meta["lookup_note"] = look.note;
        } else {
            s.meta["lookup_unavailable"] = look.note;
        }
    }
    return s;
}

Snapshot ProbeRunner::reconstruction(int64_t step, int stage, Objective& current, Objective* previous, const std::string& previousName) {
    Snapshot s = base("reconstruction", step, stage);
    ProbeHeads heads = findProbeHeads(current, previous, previousName);
    if (!heads.mim) {
        s.meta["unavailable"] = "reconstructions need an MAE decoder: " + heads.mimMissing;
        return s;
    }
    MaeConfig cfg = heads.mim->cfg;
    if (maskRatio_ > 0) cfg.maskRatio = maskRatio_;
    ReconstructionPanels p = reconstruct(current.encoder(), heads.mim->decoder, cfg, heads.mim->patchSize, mean_, std_,
                                         images_.images01.to(device_), maskSeed_);
    s.meta["mask_ratio"] = cfg.maskRatio;
    s.meta["mask_seed"] = maskSeed_;
    s.arrays.push_back(toArray("original", p.original));
    s.arrays.push_back(toArray("masked", p.masked));
    s.arrays.push_back(toArray("reconstruction", p.reconstruction));
    s.arrays.push_back(toArray("pasted", p.pasted));
    s.arrays.push_back(toArray("mask", p.mask));
    s.arrays.push_back(toArray("loss_per_image", p.lossPerImage));
    s.meta["loss"] = p.loss;
    s.meta["pixel_note"] = p.pixelNote;
    s.meta["decoder"] = heads.mim->origin;
    return s;
}

std::vector<Snapshot> ProbeRunner::run(int64_t step, int stage, Objective& current, Objective* previous,
                                       const std::string& previousName) {
    std::vector<Snapshot> out;
    auto add = [&](Snapshot s) {
        if (!s.unavailable().empty()) {
            if (!reported_.insert({s.kind, stage}).second) return;  // said once per stage
        }
        out.push_back(std::move(s));
    };
    if (cfg_.reconstruction) add(reconstruction(step, stage, current, previous, previousName));
    if (cfg_.attention) add(attention(step, stage, current));
    if (cfg_.similarity) add(similarity(step, stage, current));
    if (cfg_.gradcos) add(gradcos(step, stage, current, previous, previousName));
    return out;
}

}  // namespace graftlab
