#include "service/remote/convert.h"

namespace mpim::service::remote {
namespace {

// A reply's role: out of range reads as member (never more rights).
store::GroupRole RoleOrMember(int32_t role) {
  auto r = GroupRoleFromWire(role);
  return r.ok() ? *r : store::GroupRole::kMember;
}

}  // namespace

void ToProto(const Principal& in, pb::Principal* out) {
  out->set_user_id(in.user_id);
  out->set_session_id(in.session_id);
}

Principal FromProto(const pb::Principal& in) { return {in.user_id(), in.session_id()}; }

void ToProto(const route::ConnId& in, pb::ConnId* out) {
  out->set_node(in.node);
  out->set_local(in.local);
}

route::ConnId FromProto(const pb::ConnId& in) { return {in.node(), in.local()}; }

void ToProto(const UserProfile& in, pb::UserProfile* out) {
  out->set_user_id(in.user_id);
  out->set_username(in.username);
  out->set_display_name(in.display_name);
  out->set_avatar_url(in.avatar_url);
  out->set_created_at(in.created_at);
  out->set_last_seen(in.last_seen);
  out->set_online(in.online);
}

UserProfile FromProto(const pb::UserProfile& in) {
  return {in.user_id(),    in.username(),  in.display_name(), in.avatar_url(),
          in.created_at(), in.last_seen(), in.online()};
}

void ToProto(const store::Message& in, pb::Message* out) {
  out->set_msg_id(in.msg_id);
  out->set_conv_id(in.conv_id);
  out->set_seq(in.seq);
  out->set_sender(in.sender);
  out->set_recipient(in.recipient);
  out->set_type(in.type);
  out->set_body(in.body);
  out->set_ts(in.ts);
  out->set_client_msg_id(in.client_msg_id);
  out->set_recalled(in.recalled);
}

store::Message FromProto(const pb::Message& in) {
  return {in.msg_id(), in.conv_id(), in.seq(), in.sender(),        in.recipient(),
          in.type(),   in.body(),    in.ts(),  in.client_msg_id(), in.recalled()};
}

void ToProto(const store::Group& in, pb::Group* out) {
  out->set_group_id(in.group_id);
  out->set_conv_id(in.conv_id);
  out->set_name(in.name);
  out->set_avatar_url(in.avatar_url);
  out->set_owner_id(in.owner_id);
  out->set_is_public(in.is_public);
  out->set_member_count(in.member_count);
  out->set_created_at(in.created_at);
}

store::Group FromProto(const pb::Group& in) {
  return {in.group_id(), in.conv_id(),   in.name(),         in.avatar_url(),
          in.owner_id(), in.is_public(), in.member_count(), in.created_at()};
}

void ToProto(const store::GroupMember& in, pb::GroupMember* out) {
  out->set_group_id(in.group_id);
  out->set_user_id(in.user_id);
  out->set_role(static_cast<int32_t>(in.role));
  out->set_joined_at(in.joined_at);
  out->set_joined_seq(in.joined_seq);
}

store::GroupMember FromProto(const pb::GroupMember& in) {
  return {in.group_id(), in.user_id(), RoleOrMember(in.role()), in.joined_at(), in.joined_seq()};
}

void ToProto(const GroupView& in, pb::GroupView* out) {
  ToProto(in.group, out->mutable_group());
  if (in.role) out->set_role(static_cast<int32_t>(*in.role));
}

GroupView FromProto(const pb::GroupView& in) {
  GroupView out{FromProto(in.group()), std::nullopt};
  if (in.has_role()) out.role = RoleOrMember(in.role());
  return out;
}

void ToProto(const MemberView& in, pb::MemberView* out) {
  ToProto(in.user, out->mutable_user());
  out->set_role(static_cast<int32_t>(in.role));
  out->set_joined_at(in.joined_at);
}

MemberView FromProto(const pb::MemberView& in) {
  return {FromProto(in.user()), RoleOrMember(in.role()), in.joined_at()};
}

void ToProto(const ConversationView& in, pb::ConversationView* out) {
  const store::UserConversation& uc = in.conv;
  pb::UserConversation* c = out->mutable_conv();
  pb::Conversation* conv = c->mutable_conversation();
  conv->set_conv_id(uc.conversation.conv_id);
  conv->set_type(static_cast<int32_t>(uc.conversation.type));
  conv->set_last_seq(uc.conversation.last_seq);
  conv->set_last_msg_id(uc.conversation.last_msg_id);
  conv->set_last_activity(uc.conversation.last_activity);
  conv->set_created_at(uc.conversation.created_at);
  c->set_read_seq(uc.read_seq);
  c->set_unread(uc.unread);
  c->set_muted(uc.muted);
  c->set_pinned(uc.pinned);
  if (uc.last_message) ToProto(*uc.last_message, c->mutable_last_message());
  if (in.peer) ToProto(*in.peer, out->mutable_peer());
  if (in.group) ToProto(*in.group, out->mutable_group());
}

ConversationView FromProto(const pb::ConversationView& in) {
  ConversationView out;
  const pb::UserConversation& c = in.conv();
  const pb::Conversation& conv = c.conversation();
  out.conv.conversation = {conv.conv_id(),
                           conv.type() == static_cast<int32_t>(store::ConvType::kGroup)
                               ? store::ConvType::kGroup
                               : store::ConvType::kPrivate,
                           conv.last_seq(),
                           conv.last_msg_id(),
                           conv.last_activity(),
                           conv.created_at()};
  out.conv.read_seq = c.read_seq();
  out.conv.unread = c.unread();
  out.conv.muted = c.muted();
  out.conv.pinned = c.pinned();
  if (c.has_last_message()) out.conv.last_message = FromProto(c.last_message());
  if (in.has_peer()) out.peer = FromProto(in.peer());
  if (in.has_group()) out.group = FromProto(in.group());
  return out;
}

void ToProto(const store::PendingConversation& in, pb::PendingConversation* out) {
  out->set_conv_id(in.conv_id);
  out->set_last_seq(in.last_seq);
  out->set_read_seq(in.read_seq);
  out->set_delivered_seq(in.delivered_seq);
}

store::PendingConversation FromProto(const pb::PendingConversation& in) {
  return {in.conv_id(), in.last_seq(), in.read_seq(), in.delivered_seq()};
}

void ToProto(const FriendEntry& in, pb::FriendEntry* out) {
  ToProto(in.user, out->mutable_user());
  out->set_since(in.since);
}

FriendEntry FromProto(const pb::FriendEntry& in) { return {FromProto(in.user()), in.since()}; }

void ToProto(const FriendPage& in, pb::FriendPage* out) {
  for (const FriendEntry& e : in.entries) ToProto(e, out->add_entries());
  out->set_has_more(in.has_more);
}

FriendPage FromProto(const pb::FriendPage& in) {
  FriendPage out;
  out.entries.reserve(static_cast<size_t>(in.entries_size()));
  for (const pb::FriendEntry& e : in.entries()) out.entries.push_back(FromProto(e));
  out.has_more = in.has_more();
  return out;
}

void ToProto(const MessagePage& in, pb::MessagePage* out) {
  for (const store::Message& m : in.messages) ToProto(m, out->add_messages());
  out->set_has_more(in.has_more);
}

MessagePage FromProto(const pb::MessagePage& in) {
  MessagePage out;
  out.messages.reserve(static_cast<size_t>(in.messages_size()));
  for (const pb::Message& m : in.messages()) out.messages.push_back(FromProto(m));
  out.has_more = in.has_more();
  return out;
}

void ToProto(const TokenPair& in, pb::TokenPair* out) {
  out->set_access_token(in.access_token);
  out->set_refresh_token(in.refresh_token);
  out->set_expires_in(in.expires_in);
}

TokenPair FromProto(const pb::TokenPair& in) {
  return {in.access_token(), in.refresh_token(), in.expires_in()};
}

void ToProto(const SendResult& in, pb::SendResult* out) {
  out->set_msg_id(in.msg_id);
  out->set_conv_id(in.conv_id);
  out->set_seq(in.seq);
  out->set_ts(in.ts);
}

SendResult FromProto(const pb::SendResult& in) {
  return {in.msg_id(), in.conv_id(), in.seq(), in.ts()};
}

core::StatusOr<store::GroupRole> GroupRoleFromWire(int32_t role) {
  switch (role) {
    case static_cast<int32_t>(store::GroupRole::kMember):
      return store::GroupRole::kMember;
    case static_cast<int32_t>(store::GroupRole::kAdmin):
      return store::GroupRole::kAdmin;
    case static_cast<int32_t>(store::GroupRole::kOwner):
      return store::GroupRole::kOwner;
    default:
      return absl::InvalidArgumentError("unknown group role " + std::to_string(role));
  }
}

Priority PriorityFromWire(int32_t priority) {
  if (priority < static_cast<int32_t>(Priority::kLow) ||
      priority > static_cast<int32_t>(Priority::kUrgent)) {
    return Priority::kNormal;
  }
  return static_cast<Priority>(priority);
}

}  // namespace mpim::service::remote
