#include "base/math.h"

#include <stdint.h>
#include <string.h>

namespace {

uint64_t bits_of(double x) {
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

double from_bits(uint64_t b) {
    double x;
    memcpy(&x, &b, sizeof x);
    return x;
}

constexpr double kInfinity = __builtin_inf();
constexpr double kNaN = __builtin_nan("");
// ln 2 split so that k * kLn2Hi is exact for |k| < 2^11.
constexpr double kLn2Hi = 0x1.62e42fefa3800p-1;
constexpr double kLn2Lo = 0x1.ef35793c76730p-45;

// 2^k for k in [-1074, 1023], by building the exponent (two steps below the normal range).
double two_to(int k) {
    if (k < -1022) return from_bits(static_cast<uint64_t>(k + 1022 + 1023) << 52) * 0x1p-1022;
    return from_bits(static_cast<uint64_t>(k + 1023) << 52);
}

}  // namespace

extern "C" double gprof_log(double x) noexcept {
    if (x != x || x == kInfinity) return x;
    if (x < 0) return kNaN;
    if (x == 0) return -kInfinity;
    int k = 0;
    uint64_t b = bits_of(x);
    if ((b >> 52) == 0) {  // subnormal: scale into the normal range first
        b = bits_of(x * 0x1p54);
        k = -54;
    }
    k += static_cast<int>(b >> 52) - 1023;
    // m in [1, 2); brought into [sqrt(1/2), sqrt(2)) so that s below stays small.
    double m = from_bits((b & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1023) << 52));
    if (m > 1.4142135623730951) {
        m *= 0.5;
        ++k;
    }
    // log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.1716: the series to s^25 is exact to
    // well under an ulp.
    double s = (m - 1) / (m + 1);
    double s2 = s * s;
    double sum = 0;
    for (int n = 25; n >= 3; n -= 2) sum = (sum + 1.0 / n) * s2;
    double log_m = 2 * s + 2 * s * sum;
    return (k * kLn2Hi + log_m) + k * kLn2Lo;
}

extern "C" double gprof_exp(double x) noexcept {
    if (x != x) return x;
    if (x > 709.782712893384) return kInfinity;
    if (x < -745.1332191019412) return 0;
    // x = k ln2 + r, |r| <= ln2 / 2; e^r by its Taylor series to r^16 / 16!.
    double kd = x * 1.4426950408889634;
    int k = static_cast<int>(kd < 0 ? kd - 0.5 : kd + 0.5);
    double r = (x - k * kLn2Hi) - k * kLn2Lo;
    double sum = 1;
    for (int n = 16; n >= 1; --n) sum = 1 + sum * r / n;
    if (k > 1023) return sum * two_to(1023) * two_to(k - 1023);
    if (k < -1022) return sum * two_to(k + 60) * 0x1p-60;
    return sum * two_to(k);
}

extern "C" double gprof_round(double x) noexcept {
    // |x| >= 2^52 (and infinities, NaN) is already an integer.
    if (!(x > -0x1p52 && x < 0x1p52)) return x;
    double t = static_cast<double>(static_cast<int64_t>(x));
    if (x - t >= 0.5)
        t += 1;
    else if (t - x >= 0.5)
        t -= 1;
    // A result of zero keeps x's sign (round(-0.3) is -0.0).
    if (t == 0) return from_bits(bits_of(x) & (UINT64_C(1) << 63));
    return t;
}
