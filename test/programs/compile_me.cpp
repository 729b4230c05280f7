// Input for the e2e suite's compiler test: `g++ -O2 -c` of this file runs cc1plus and as under
// gprof, and the symbol lists of the objects built with and without gprof must be identical.
// Templates, <map>, <regex> and <iostream> make the compiler allocate a lot.
#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <regex>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

namespace compile_me {

template <typename T, std::size_t N>
struct Matrix {
    T cells[N][N]{};
    Matrix operator*(const Matrix& o) const {
        Matrix r;
        for (std::size_t i = 0; i < N; ++i)
            for (std::size_t j = 0; j < N; ++j)
                for (std::size_t k = 0; k < N; ++k) r.cells[i][j] += cells[i][k] * o.cells[k][j];
        return r;
    }
};

template <typename... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

using Value = std::variant<long, double, std::string, std::vector<int>>;

std::string describe(const Value& v) {
    return std::visit(
        Overloaded{
            [](long x) { return "long " + std::to_string(x); },
            [](double x) { return "double " + std::to_string(x); },
            [](const std::string& s) { return "string " + s; },
            [](const std::vector<int>& v) { return "vector of " + std::to_string(v.size()); },
        },
        v);
}

template <typename Key, typename Val>
class Registry {
  public:
    void add(Key k, Val v) { items_.emplace(std::move(k), std::move(v)); }
    template <typename Pred>
    std::vector<Key> keys_where(Pred p) const {
        std::vector<Key> out;
        for (const auto& [k, v] : items_)
            if (p(v)) out.push_back(k);
        return out;
    }
    std::size_t size() const { return items_.size(); }

  private:
    std::map<Key, Val> items_;
};

template <int N>
struct Fib {
    static constexpr long value = Fib<N - 1>::value + Fib<N - 2>::value;
};
template <>
struct Fib<0> {
    static constexpr long value = 0;
};
template <>
struct Fib<1> {
    static constexpr long value = 1;
};

std::vector<std::string> tokens(const std::string& text) {
    static const std::regex word(R"(([A-Za-z_][A-Za-z0-9_]*)|(\d+(\.\d+)?))");
    std::vector<std::string> out;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), word);
         it != std::sregex_iterator(); ++it)
        out.push_back(it->str());
    return out;
}

std::map<std::string, int> count_words(std::istream& in) {
    std::map<std::string, int> counts;
    std::string line;
    while (std::getline(in, line))
        for (auto& t : tokens(line)) ++counts[t];
    return counts;
}

bool looks_like_email(const std::string& s) {
    static const std::regex re(R"(^[\w.+-]+@[\w-]+(\.[\w-]+)+$)", std::regex::icase);
    return std::regex_match(s, re);
}

std::string replace_numbers(const std::string& s) {
    return std::regex_replace(s, std::regex(R"(\d+)"), "<n>");
}

}  // namespace compile_me

int compile_me_main(int argc, char** argv) {
    using namespace compile_me;
    Registry<std::string, Value> reg;
    for (int i = 0; i < argc; ++i) reg.add(argv[i], Value{std::string(argv[i])});
    reg.add("answer", Value{42L});
    reg.add("pi", Value{3.14159});
    reg.add("list", Value{std::vector<int>{1, 2, 3}});
    auto longs = reg.keys_where([](const Value& v) { return std::holds_alternative<long>(v); });

    std::istringstream in("alpha beta 12 gamma 3.5\nbeta beta delta_4 99\n");
    auto counts = count_words(in);
    for (const auto& [w, c] : counts) std::cout << w << ' ' << c << '\n';
    std::cout << describe(Value{7L}) << ' ' << looks_like_email("a.b@example.org") << ' '
              << replace_numbers("x1 y22 z333") << ' ' << Fib<40>::value << ' ' << longs.size()
              << '\n';

    Matrix<double, 4> m;
    for (int i = 0; i < 4; ++i) m.cells[i][i] = 2;
    auto p = m * m * m;
    std::unordered_map<int, std::function<int(int)>> ops{{0, [](int x) { return x + 1; }},
                                                         {1, [](int x) { return x * 2; }}};
    std::vector<int> v(100);
    std::iota(v.begin(), v.end(), 0);
    std::transform(v.begin(), v.end(), v.begin(), ops[1]);
    std::sort(v.begin(), v.end(), std::greater<>());
    auto t = std::make_tuple(p.cells[0][0], v.front(), std::accumulate(v.begin(), v.end(), 0L));
    std::cout << std::get<0>(t) << ' ' << std::get<1>(t) << ' ' << std::get<2>(t) << '\n';
    return static_cast<int>(reg.size() % 2);
}
