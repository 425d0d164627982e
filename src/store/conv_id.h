// Conversation ids: "p:<a>:<b>" for the private chat of users a < b
// (numerically), "g:<group_id>" for a group. Decimal, no sign, no leading
// zeros, ids > 0.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mpim::store {

enum class ConvType { kPrivate = 0, kGroup = 1 };

struct ConvRef {
  ConvType type = ConvType::kPrivate;
  int64_t a = 0;  // private: the smaller user id; group: the group id
  int64_t b = 0;  // private: the larger user id; group: 0
};

// "p:<min>:<max>". Requires user_a != user_b, both > 0.
std::string PrivateConvId(int64_t user_a, int64_t user_b);
std::string GroupConvId(int64_t group_id);

// Parses a canonical conversation id; nullopt if malformed (including a
// private id whose users are not in ascending order or are equal).
std::optional<ConvRef> ParseConvId(std::string_view conv_id);

}  // namespace mpim::store
