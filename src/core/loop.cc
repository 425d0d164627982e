#include "core/loop.h"

namespace mpim::core {
namespace {
thread_local Loop* t_loop = nullptr;
}  // namespace

Loop* CurrentLoop() { return t_loop; }

LoopScope::LoopScope(Loop* loop) : previous_(t_loop) { t_loop = loop; }

LoopScope::~LoopScope() { t_loop = previous_; }

}  // namespace mpim::core
