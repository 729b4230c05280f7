#include <catch2/catch.hpp>
#include <stdint.h>
#include <string.h>

#include <cmath>
#include <limits>
#include <random>

#include "base/math.h"

namespace {

// Distance in units in the last place between two finite doubles of the same sign.
uint64_t ulps(double a, double b) {
    int64_t ia, ib;
    memcpy(&ia, &a, sizeof a);
    memcpy(&ib, &b, sizeof b);
    return ia > ib ? static_cast<uint64_t>(ia - ib) : static_cast<uint64_t>(ib - ia);
}

double random_double(std::mt19937_64& gen, double lo_exp, double hi_exp) {
    std::uniform_real_distribution<double> e(lo_exp, hi_exp);
    return std::exp2(e(gen));
}

}  // namespace

TEST_CASE("gprof_log agrees with libm within 2 ulps over the whole range") {
    std::mt19937_64 gen(7);
    uint64_t worst = 0;
    for (int i = 0; i < 200000; ++i) {
        double x = random_double(gen, -1074, 1023.9);
        uint64_t d = ulps(gprof_log(x), std::log(x));
        if (std::log(x) != 0 && d > worst) worst = d;
    }
    INFO("worst " << worst << " ulps");
    CHECK(worst <= 2);
    // Near 1, where the result is small and a careless formula loses digits.
    for (double x : {1 - 0x1p-53, 1 + 0x1p-52, 0.999, 1.001, 0.75, 1.4}) {
        INFO(x);
        CHECK(ulps(gprof_log(x), std::log(x)) <= 2);
    }
    CHECK(gprof_log(1) == 0);
    CHECK(gprof_log(0) == -std::numeric_limits<double>::infinity());
    CHECK(std::isnan(gprof_log(-1)));
    CHECK(std::isnan(gprof_log(std::nan(""))));
    CHECK(gprof_log(std::numeric_limits<double>::infinity()) ==
          std::numeric_limits<double>::infinity());
    CHECK(gprof_log(std::numeric_limits<double>::denorm_min()) ==
          Approx(std::log(std::numeric_limits<double>::denorm_min())));
}

TEST_CASE("gprof_exp agrees with libm within 2 ulps where the result is normal") {
    std::mt19937_64 gen(11);
    std::uniform_real_distribution<double> dist(-708, 709.7);
    uint64_t worst = 0;
    for (int i = 0; i < 200000; ++i) {
        double x = dist(gen);
        uint64_t d = ulps(gprof_exp(x), std::exp(x));
        if (d > worst) worst = d;
    }
    INFO("worst " << worst << " ulps");
    CHECK(worst <= 2);
    for (double x : {0.0, 1e-300, -1e-17, 0.5, -0.5, 1.0, 0.34657359, -0.34657359}) {
        INFO(x);
        CHECK(ulps(gprof_exp(x), std::exp(x)) <= 1);
    }
    // Subnormal results, overflow and underflow.
    CHECK(gprof_exp(-740) == Approx(std::exp(-740)).epsilon(1e-9));
    CHECK(gprof_exp(-800) == 0);
    CHECK(gprof_exp(710) == std::numeric_limits<double>::infinity());
    CHECK(gprof_exp(-std::numeric_limits<double>::infinity()) == 0);
    CHECK(std::isnan(gprof_exp(std::nan(""))));
}

TEST_CASE("gprof_round rounds half away from zero as round(3)") {
    for (double x : {0.0, -0.0, 0.3, -0.3, 0.5, -0.5, 0.49999999999999994, 1.5, 2.5, -2.5,
                     3.7, -3.7, 1e15 + 0.5, -1e15 - 0.5, 0x1p52, 0x1p52 + 1, 1e300, -1e300,
                     std::numeric_limits<double>::infinity()}) {
        INFO(x);
        double got = gprof_round(x), want = std::round(x);
        CHECK(got == want);
        CHECK(std::signbit(got) == std::signbit(want));
    }
    CHECK(std::isnan(gprof_round(std::nan(""))));
    std::mt19937_64 gen(3);
    std::uniform_real_distribution<double> dist(-1e6, 1e6);
    for (int i = 0; i < 100000; ++i) {
        double x = dist(gen);
        REQUIRE(gprof_round(x) == std::round(x));
    }
}
