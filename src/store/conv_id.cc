#include "store/conv_id.h"

#include <charconv>

namespace mpim::store {
namespace {

// A positive decimal without sign or leading zero that fits int64.
std::optional<int64_t> ParseId(std::string_view s) {
  if (s.empty() || s.size() > 19 || s[0] == '0') return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

}  // namespace

std::string PrivateConvId(int64_t user_a, int64_t user_b) {
  if (user_a > user_b) std::swap(user_a, user_b);
  return "p:" + std::to_string(user_a) + ":" + std::to_string(user_b);
}

std::string GroupConvId(int64_t group_id) { return "g:" + std::to_string(group_id); }

std::optional<ConvRef> ParseConvId(std::string_view conv_id) {
  if (conv_id.size() < 3 || conv_id[1] != ':') return std::nullopt;
  std::string_view rest = conv_id.substr(2);
  if (conv_id[0] == 'g') {
    auto id = ParseId(rest);
    if (!id) return std::nullopt;
    return ConvRef{ConvType::kGroup, *id, 0};
  }
  if (conv_id[0] != 'p') return std::nullopt;
  size_t colon = rest.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  auto a = ParseId(rest.substr(0, colon));
  auto b = ParseId(rest.substr(colon + 1));
  if (!a || !b || *a >= *b) return std::nullopt;
  return ConvRef{ConvType::kPrivate, *a, *b};
}

}  // namespace mpim::store
