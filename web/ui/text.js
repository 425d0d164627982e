// How messages read in the chat and in list previews.

export function systemText(store, m) {
  const b = m.body || {};
  // "You" as a subject, "you" elsewhere.
  const subj = (id) => (id ? store.userName(id) : 'Someone');
  const obj = (id) => (id === store.me?.user_id ? 'you' : store.userName(id));
  const by = subj(b.by);
  const users = b.users || (b.user ? [b.user] : []);
  switch (b.event) {
    case 'created':
      return `${by} created the group${b.name ? ` “${b.name}”` : ''}`;
    case 'joined':
      if (b.user && (!b.by || b.user === b.by)) return `${subj(b.user)} joined`;
      return `${by} added ${users.map(obj).join(', ')}`;
    case 'left':
      return `${subj(b.user)} left`;
    case 'removed':
      return `${by} removed ${obj(b.user)}`;
    case 'renamed':
      return `${by} renamed the group to “${b.name}”`;
    case 'role_changed':
      return `${by} made ${obj(b.user)} ${b.role === 'admin' ? 'an admin' : 'a member'}`;
    case 'owner_changed':
      return `${subj(b.user)} ${b.user === store.me?.user_id ? 'are' : 'is'} now the owner`;
    default:
      return b.event ? `Group ${b.event}` : 'Group update';
  }
}

export function bodyText(m) {
  if (m.recalled) return null;
  if (m.type === 'text') return m.body?.text ?? '';
  return null;
}

export function previewOf(store, m) {
  if (!m) return '';
  if (m.type === 'system') return systemText(store, m);
  const mine = m.from === store.me?.user_id;
  if (m.recalled) return mine ? 'You recalled a message' : 'Message recalled';
  const text = m.type === 'text' ? (m.body?.text ?? '') : '[custom message]';
  const who = mine ? 'You: ' : (m.conv_id?.startsWith('g:') ? `${store.userName(m.from)}: ` : '');
  return who + text.replace(/\s+/g, ' ').slice(0, 120);
}
