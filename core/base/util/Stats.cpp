#include "base/util/Stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

namespace graftlab {

double meanOf(const std::vector<double>& v) {
    if (v.empty()) return std::nan("");
    return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
}

double sampleSd(const std::vector<double>& v) {
    if (v.size() < 2) return std::nan("");
    const double m = meanOf(v);
    double ss = 0;
    for (double x : v) ss += (x - m) * (x - m);
    return std::sqrt(ss / double(v.size() - 1));
}

namespace {

// The continued fraction of the regularized incomplete beta function (modified Lentz), valid for x < (a+1)/(a+b+2).
double betaContinuedFraction(double a, double b, double x) {
    const double tiny = 1e-300;
    double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
    if (std::abs(d) < tiny) d = tiny;
    d = 1.0 / d;
    double h = d;
    // One Lentz update with the continued fraction's next coefficient; returns the factor it multiplies h by.
    auto update = [&](double coefficient) {
        d = 1.0 + coefficient * d;
        if (std::abs(d) < tiny) d = tiny;
        c = 1.0 + coefficient / c;
        if (std::abs(c) < tiny) c = tiny;
        d = 1.0 / d;
        return d * c;
    };
    for (int m = 1; m <= 500; ++m) {
        const double m2 = 2.0 * m;
        h *= update(m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)));
        const double del = update(-(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)));
        h *= del;
        if (std::abs(del - 1.0) < 1e-15) break;
    }
    return h;
}

// I_x(a, b), the regularized incomplete beta function.
double incompleteBeta(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    const double lnFront = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
    if (x < (a + 1.0) / (a + b + 2.0)) return std::exp(lnFront) * betaContinuedFraction(a, b, x) / a;
    return 1.0 - std::exp(lnFront) * betaContinuedFraction(b, a, 1.0 - x) / b;
}

}  // namespace

double studentTwoSidedP(double t, double df) {
    if (std::isnan(t) || !(df > 0)) return std::nan("");
    if (std::isinf(t)) return 0.0;
    // P(|T| >= |t|) = I_{df / (df + t²)}(df / 2, 1 / 2)
    return incompleteBeta(df / 2.0, 0.5, df / (df + t * t));
}

namespace {
TTest finish(TTest r) {
    r.valid = true;
    if (r.se > 0) {
        r.t = r.diff / r.se;
        r.p = studentTwoSidedP(r.t, r.df);
    } else {  // no spread at all: a difference is certain, none is none
        r.t = r.diff == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), r.diff);
        r.p = r.diff == 0 ? 1.0 : 0.0;
    }
    return r;
}
}  // namespace

TTest pairedTTest(const std::vector<double>& a, const std::vector<double>& b) {
    TTest r;
    r.paired = true;
    if (a.size() != b.size() || a.size() < 2) return r;
    std::vector<double> d(a.size());
    for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
    r.n = d.size();
    r.diff = meanOf(d);
    r.se = sampleSd(d) / std::sqrt(double(r.n));
    r.df = double(r.n) - 1.0;
    return finish(r);
}

TTest welchTTest(const std::vector<double>& a, const std::vector<double>& b) {
    TTest r;
    if (a.size() < 2 || b.size() < 2) return r;
    r.n = std::min(a.size(), b.size());
    const double va = std::pow(sampleSd(a), 2) / double(a.size()), vb = std::pow(sampleSd(b), 2) / double(b.size());
    r.diff = meanOf(a) - meanOf(b);
    r.se = std::sqrt(va + vb);
    const double den = va * va / double(a.size() - 1) + vb * vb / double(b.size() - 1);
    r.df = den > 0 ? (va + vb) * (va + vb) / den : double(a.size() + b.size() - 2);
    return finish(r);
}

std::vector<bool> holmRejects(const std::vector<double>& p, double alpha) {
    std::vector<size_t> order(p.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return p[i] < p[j]; });
    std::vector<bool> rejected(p.size(), false);
    const size_t m = p.size();
    for (size_t k = 0; k < m; ++k) {
        const double pk = p[order[k]];
        if (!(pk <= alpha / double(m - k))) break;  // the first that fails stops the procedure (NaN fails too)
        rejected[order[k]] = true;
    }
    return rejected;
}

std::string describeDifference(const TTest& t, const char* sign, bool holm) {
    char pText[32], buf[128];
    if (t.p < 0.001) std::snprintf(pText, sizeof pText, "p < 0.001");
    else std::snprintf(pText, sizeof pText, "p = %.3f", t.p);
    std::snprintf(buf, sizeof buf, " (%s%.1f ± %.1f, %s%s)", sign, 100 * std::abs(t.diff), 100 * t.se, pText, holm ? "†" : "");
    return buf;
}

}  // namespace graftlab
