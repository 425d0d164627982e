// Between the service interfaces' C++ types and the logic role's protobuf
// messages (proto/mpim/logic.proto), both ways, field for field. Enums out
// of range on the wire are refused where a request carries them
// (GroupRoleFromWire) and read as their default where a reply does.
//
// Pure functions; thread-safe.
#pragma once

#include "mpim/logic.pb.h"
#include "route/conn_id.h"
#include "service/auth_service.h"
#include "service/conversation_service.h"
#include "service/deliverer.h"
#include "service/friend_service.h"
#include "service/group_service.h"
#include "service/message_service.h"
#include "service/user_service.h"

namespace mpim::service::remote {

namespace pb = ::mpim::logic;

void ToProto(const Principal& in, pb::Principal* out);
Principal FromProto(const pb::Principal& in);
void ToProto(const route::ConnId& in, pb::ConnId* out);
route::ConnId FromProto(const pb::ConnId& in);

void ToProto(const UserProfile& in, pb::UserProfile* out);
UserProfile FromProto(const pb::UserProfile& in);
void ToProto(const store::Message& in, pb::Message* out);
store::Message FromProto(const pb::Message& in);
void ToProto(const store::Group& in, pb::Group* out);
store::Group FromProto(const pb::Group& in);
void ToProto(const store::GroupMember& in, pb::GroupMember* out);
store::GroupMember FromProto(const pb::GroupMember& in);
void ToProto(const GroupView& in, pb::GroupView* out);
GroupView FromProto(const pb::GroupView& in);
void ToProto(const MemberView& in, pb::MemberView* out);
MemberView FromProto(const pb::MemberView& in);
void ToProto(const ConversationView& in, pb::ConversationView* out);
ConversationView FromProto(const pb::ConversationView& in);
void ToProto(const store::PendingConversation& in, pb::PendingConversation* out);
store::PendingConversation FromProto(const pb::PendingConversation& in);
void ToProto(const FriendEntry& in, pb::FriendEntry* out);
FriendEntry FromProto(const pb::FriendEntry& in);
void ToProto(const FriendPage& in, pb::FriendPage* out);
FriendPage FromProto(const pb::FriendPage& in);
void ToProto(const MessagePage& in, pb::MessagePage* out);
MessagePage FromProto(const pb::MessagePage& in);
void ToProto(const TokenPair& in, pb::TokenPair* out);
TokenPair FromProto(const pb::TokenPair& in);
void ToProto(const SendResult& in, pb::SendResult* out);
SendResult FromProto(const pb::SendResult& in);

// The role of a request: invalid_argument when out of range.
core::StatusOr<store::GroupRole> GroupRoleFromWire(int32_t role);
// Out of range: kNormal.
Priority PriorityFromWire(int32_t priority);

}  // namespace mpim::service::remote
