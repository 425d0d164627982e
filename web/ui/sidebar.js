// The left pane: who I am and the connection state, user search to start a
// private chat, "new group", and the conversation list.
import { h, clear, avatar, shortTime, debounce, scheduler, icon } from './dom.js';
import { previewOf } from './text.js';

const CONN_TEXT = { online: 'Connected', connecting: 'Connecting…', offline: 'Offline, reconnecting…' };

export function mountSidebar(el, { store, api, messenger, onOpen, onNewGroup, onLogout }) {
  const meName = h('span', { class: 'me-name', id: 'me-name' });
  const conn = h('span', { class: 'conn', id: 'conn-state', role: 'status' });
  const logout = h('button', { class: 'icon-btn', id: 'logout', title: 'Log out', 'aria-label': 'Log out', onclick: onLogout }, icon('logout'));
  const search = h('input', {
    id: 'user-search', type: 'search', placeholder: 'Find people…', autocomplete: 'off',
    autocapitalize: 'none', spellcheck: 'false', 'aria-label': 'Find people by username',
  });
  const results = h('ul', { class: 'search-results', id: 'search-results', hidden: true });
  const newGroup = h('button', { class: 'secondary', id: 'new-group', onclick: onNewGroup }, '+ New group');
  const list = h('ul', { class: 'conv-list', id: 'conv-list', 'aria-label': 'Conversations' });
  const empty = h('p', { class: 'empty-hint', id: 'conv-empty' }, 'No conversations yet. Find someone above to start chatting.');

  el.replaceChildren(
    h('header', { class: 'side-head' },
      h('div', { class: 'me' }, h('span', { class: 'me-avatar' }), h('div', { class: 'me-text' }, meName, conn)),
      logout),
    h('div', { class: 'side-tools' }, h('div', { class: 'search-wrap' }, search, results), newGroup),
    empty, list);

  const runSearch = debounce(async () => {
    const q = search.value.trim().toLowerCase();
    if (!q || !/^[a-z0-9_.-]{1,32}$/.test(q)) { results.hidden = true; clear(results); return; }
    try {
      const r = await api.searchUsers(q, 20);
      if (search.value.trim().toLowerCase() !== q) return;
      clear(results);
      const users = (r.users || []).filter((u) => u.user_id !== store.me.user_id);
      if (!users.length) results.append(h('li', { class: 'muted' }, 'No one found'));
      for (const u of users) {
        store.users.set(u.user_id, { ...store.users.get(u.user_id), ...u });
        results.append(h('li', {},
          h('button', {
            class: 'user-row', dataset: { user: u.username },
            onclick: () => {
              search.value = '';
              results.hidden = true;
              onOpen(store.privateConvId(u.user_id));
            },
          }, avatar(u.display_name, u.user_id, u.avatar_url, 'sm'),
          h('span', { class: 'user-names' }, h('b', {}, u.display_name), h('small', {}, `@${u.username}`)))));
      }
      results.hidden = false;
    } catch (e) {
      clear(results).append(h('li', { class: 'muted' }, `Search failed: ${e.message}`));
      results.hidden = false;
    }
  }, 200);
  search.addEventListener('input', runSearch);
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { search.value = ''; results.hidden = true; }
    if (e.key === 'Enter') results.querySelector('button')?.click();
  });

  const renderHead = () => {
    const me = store.me;
    if (!me) return;
    meName.textContent = me.display_name || me.username;
    el.querySelector('.me-avatar').replaceWith(Object.assign(avatar(me.display_name, me.user_id, me.avatar_url, 'sm'), { className: 'avatar sm me-avatar' }));
    conn.textContent = CONN_TEXT[store.conn] || store.conn;
    conn.dataset.state = store.conn;
  };

  const renderList = () => {
    const items = store.sortedConvs().filter((s) => s.last_seq > 0 || s.conv_id === store.current || s.type === 'group');
    empty.hidden = items.length > 0;
    const rows = items.map((s) => convRow(s));
    list.replaceChildren(...rows);
  };

  function convRow(s) {
    const title = store.convTitle(s);
    const peer = s.type === 'private' ? store.peerId(s.conv_id) : null;
    const peerUser = peer ? store.users.get(peer) : null;
    const typing = store.typingIn(s.conv_id);
    const preview = typing.length
      ? h('span', { class: 'typing-preview' }, s.type === 'group' ? `${store.userName(typing[0])} is typing…` : 'typing…')
      : (s.left ? (s.left === 'removed' ? 'You were removed' : 'You left') : previewOf(store, s.last_message));
    const av = s.type === 'group'
      ? avatar(title, s.conv_id, null, 'group')
      : avatar(title, peer, peerUser?.avatar_url);
    const dot = peer ? h('span', { class: `presence ${store.isOnline(peer) ? 'on' : 'off'}`, title: store.isOnline(peer) ? 'online' : 'offline' }) : null;
    return h('li', {},
      h('button', {
        class: `conv${s.conv_id === store.current ? ' active' : ''}${s.unread ? ' has-unread' : ''}`,
        dataset: { conv: s.conv_id, title },
        onclick: () => onOpen(s.conv_id),
      },
      h('span', { class: 'av-wrap' }, av, dot),
      h('span', { class: 'conv-main' },
        h('span', { class: 'conv-top' },
          h('span', { class: 'conv-title' }, title),
          s.pinned ? h('span', { class: 'pin', title: 'Pinned' }, icon('pin')) : null,
          h('span', { class: 'conv-time' }, shortTime(s.last_message?.ts || (s.last_seq ? s.activity : 0)))),
        h('span', { class: 'conv-bottom' },
          h('span', { class: 'conv-preview' }, preview),
          s.unread > 0 ? h('span', { class: `badge${s.muted ? ' muted' : ''}`, 'aria-label': `${s.unread} unread` }, s.unread > 99 ? '99+' : String(s.unread)) : null))));
  }

  const rerender = scheduler(() => { renderHead(); renderList(); });
  store.on('convs', rerender);
  store.on('users', rerender);
  store.on('conn', rerender);
  store.on('typing', rerender);
  store.on('presence', rerender);
  rerender();
}
