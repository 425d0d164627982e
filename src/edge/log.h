// The edge's logger ("edge"), shared by its files.
#pragma once

#include "core/logging.h"

namespace mpim::edge {

inline const core::Logger& Log() {
  static const core::Logger log("edge");
  return log;
}

}  // namespace mpim::edge
