#include "store/group_store.h"

namespace mpim::store {

const char* GroupRoleName(GroupRole role) {
  switch (role) {
    case GroupRole::kOwner:
      return "owner";
    case GroupRole::kAdmin:
      return "admin";
    case GroupRole::kMember:
      break;
  }
  return "member";
}

}  // namespace mpim::store
