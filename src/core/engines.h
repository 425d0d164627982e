// The pluggable parts of MPIM and the implementations of each, by name: the
// one list that the config schema (its allowed values and help) and
// `mpim --help` read. Each part's registry maps these names to factories
// (store/registry.cc, route/registry.cc, cache/registry.h,
// app/deliverers.cc), and tests/app/engines_test.cc checks that every name
// here has one and no registry knows a name that is not here.
//
// Adding an implementation: add its name below, then to its part's registry.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mpim::core {

struct EngineName {
  std::string_view part;  // the config key that picks it: "store.engine", ...
  std::string_view name;
  std::string_view help;  // one line
};

// Every implementation of every part; the first of a part is its default.
const std::vector<EngineName>& Engines();

// The names of one part's implementations, in order ("store.engine").
std::vector<std::string_view> EngineNames(std::string_view part);

// "`a` (help), `b` (help)" for help texts.
std::string EngineHelp(std::string_view part);

}  // namespace mpim::core
