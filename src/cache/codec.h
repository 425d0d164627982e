// Keys and values of the caches as bytes, for a cache held outside the
// process (Redis). One Codec<T> per type the caches use today:
//   - integers (group and session ids): decimal, "42";
//   - pairs of integers (block pairs): "1:2";
//   - bool: "1" / "0";
//   - member lists (shared_ptr<const vector<int64_t>>, null for a large
//     group): "-" for null, else the ids in decimal joined by ',' ("" for none);
//   - std::string: as it is.
// Decode reads bytes that come back from Redis, which another process (or
// another version) may have written: it checks everything and answers
// false for anything it did not write; the cache then counts an error and
// reads from the store.
//
// To cache a new type through Redis: add a Codec specialization here with
// Encode and Decode, and a round trip to tests/cache/codec_test.cc.
#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace mpim::cache {

template <typename T, typename Enable = void>
struct Codec;  // no codec: the type cannot go through Redis

// Whether T has a codec.
template <typename T>
concept Encodable = requires(const T& v, std::string& out, std::string_view in, T* t) {
  Codec<T>::Encode(v, out);
  { Codec<T>::Decode(in, t) } -> std::same_as<bool>;
};

template <typename T>
std::string Encode(const T& v) {
  std::string out;
  Codec<T>::Encode(v, out);
  return out;
}

template <typename T>
struct Codec<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static void Encode(T v, std::string& out) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
  static bool Decode(std::string_view in, T* v) {
    if (in.empty()) return false;
    auto [ptr, ec] = std::from_chars(in.data(), in.data() + in.size(), *v);
    return ec == std::errc() && ptr == in.data() + in.size();
  }
};

template <>
struct Codec<bool> {
  static void Encode(bool v, std::string& out) { out += v ? '1' : '0'; }
  static bool Decode(std::string_view in, bool* v) {
    if (in != "1" && in != "0") return false;
    *v = in == "1";
    return true;
  }
};

template <typename A, typename B>
requires std::is_integral_v<A> && std::is_integral_v<B>
struct Codec<std::pair<A, B>> {
  static void Encode(const std::pair<A, B>& v, std::string& out) {
    Codec<A>::Encode(v.first, out);
    out += ':';
    Codec<B>::Encode(v.second, out);
  }
  static bool Decode(std::string_view in, std::pair<A, B>* v) {
    size_t colon = in.find(':');
    return colon != std::string_view::npos && Codec<A>::Decode(in.substr(0, colon), &v->first) &&
           Codec<B>::Decode(in.substr(colon + 1), &v->second);
  }
};

template <typename T>
requires std::is_integral_v<T>
struct Codec<std::shared_ptr<const std::vector<T>>> {
  static void Encode(const std::shared_ptr<const std::vector<T>>& v, std::string& out) {
    if (v == nullptr) {
      out += '-';
      return;
    }
    for (size_t i = 0; i < v->size(); ++i) {
      if (i > 0) out += ',';
      Codec<T>::Encode((*v)[i], out);
    }
  }
  static bool Decode(std::string_view in, std::shared_ptr<const std::vector<T>>* v) {
    if (in == "-") {
      *v = nullptr;
      return true;
    }
    auto items = std::make_shared<std::vector<T>>();
    while (!in.empty()) {
      size_t comma = in.find(',');
      T item{};
      if (!Codec<T>::Decode(in.substr(0, comma), &item)) return false;
      items->push_back(item);
      if (comma == std::string_view::npos) break;
      in.remove_prefix(comma + 1);
      if (in.empty()) return false;  // a trailing comma
    }
    *v = std::move(items);
    return true;
  }
};

template <>
struct Codec<std::string> {
  static void Encode(const std::string& v, std::string& out) { out += v; }
  static bool Decode(std::string_view in, std::string* v) {
    v->assign(in);
    return true;
  }
};

}  // namespace mpim::cache
