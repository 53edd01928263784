#pragma once
// Stats: the significance tests behind the tables' verdicts. Where two rows share their seeds (seed s sets the
// pretraining and the evaluation randomness of both), the per-seed differences are tested with Student's paired
// t-test (n - 1 degrees of freedom); otherwise Welch's unequal-variance t-test. Holm's step-down correction says
// which of a table's comparisons survive when all of them are taken together.
#include <cstddef>
#include <string>
#include <vector>

namespace graftlab {

double meanOf(const std::vector<double>& v);            // NaN when empty
double sampleSd(const std::vector<double>& v);          // n - 1 in the denominator; NaN below 2 values

// Two-sided p-value of Student's t distribution with `df` > 0 degrees of freedom: P(|T| >= |t|).
double studentTwoSidedP(double t, double df);

struct TTest {
    bool paired = false;
    size_t n = 0;       // pairs (paired), or the smaller sample (Welch)
    double diff = 0;    // mean of a - b (paired: mean of the per-seed differences)
    double se = 0;      // its standard error
    double t = 0, df = 0;
    double p = 1;       // two-sided; 1 when the test cannot be made (fewer than 2 values, no variance and no difference)
    bool valid = false; // enough values for a test
    bool significant(double alpha = 0.05) const { return valid && p < alpha; }
};
// a[i] - b[i]: mean, standard error sd/sqrt(n), t = mean / se with n - 1 df. Needs a.size() == b.size() >= 2.
// All differences equal and non-zero: p = 0 (t infinite); all zero: p = 1.
TTest pairedTTest(const std::vector<double>& a, const std::vector<double>& b);
// Welch: se = sqrt(sa²/na + sb²/nb), Welch–Satterthwaite df. Needs at least 2 values on each side.
TTest welchTTest(const std::vector<double>& a, const std::vector<double>& b);

// Holm's step-down procedure at family-wise level `alpha`: true for each p-value rejected (significant) when all of
// `p` are tested together. Invalid tests are passed as p = 1.
std::vector<bool> holmRejects(const std::vector<double>& p, double alpha = 0.05);

// A difference as the tables write it, in points: " (+1.4 ± 0.3, p = 0.030†)". `sign` is the sign written before
// |diff| ("+" for a row above the other, "−" for one below); † when `holm` (it survives Holm's correction).
std::string describeDifference(const TTest& t, const char* sign, bool holm);

}  // namespace graftlab
