// Groups: the "new group" dialog and the group info panel (members with
// roles, add, remove, promote, leave).
import { h, clear, avatar, debounce, icon } from './dom.js';

// A username search that calls onPick(user) for the chosen result.
function userPicker({ api, store, onPick, id, exclude = () => false }) {
  const input = h('input', {
    type: 'search', id, placeholder: 'Add people by username…', autocomplete: 'off',
    autocapitalize: 'none', spellcheck: 'false', 'aria-label': 'Add people by username',
  });
  const results = h('ul', { class: 'search-results inline', hidden: true });
  const run = debounce(async () => {
    const q = input.value.trim().toLowerCase();
    if (!/^[a-z0-9_.-]{1,32}$/.test(q)) { results.hidden = true; return; }
    try {
      const r = await api.searchUsers(q, 10);
      if (input.value.trim().toLowerCase() !== q) return;
      clear(results);
      const users = (r.users || []).filter((u) => u.user_id !== store.me.user_id && !exclude(u.user_id));
      if (!users.length) results.append(h('li', { class: 'muted' }, 'No one found'));
      for (const u of users) {
        store.users.set(u.user_id, { ...store.users.get(u.user_id), ...u });
        results.append(h('li', {}, h('button', {
          type: 'button', class: 'user-row', dataset: { user: u.username },
          onclick: () => { input.value = ''; results.hidden = true; onPick(u); input.focus(); },
        }, avatar(u.display_name, u.user_id, u.avatar_url, 'sm'),
        h('span', { class: 'user-names' }, h('b', {}, u.display_name), h('small', {}, `@${u.username}`)))));
      }
      results.hidden = false;
    } catch (e) {
      clear(results).append(h('li', { class: 'muted' }, e.message));
      results.hidden = false;
    }
  }, 200);
  input.addEventListener('input', run);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') { e.preventDefault(); results.querySelector('button')?.click(); }
  });
  return h('div', { class: 'search-wrap' }, input, results);
}

export function openNewGroupDialog(root, { api, store, messenger, onCreated }) {
  const picked = new Map();
  const name = h('input', { id: 'group-name', maxlength: 64, required: true, placeholder: 'Group name', 'aria-label': 'Group name' });
  const chips = h('div', { class: 'chips', id: 'group-chips' });
  const err = h('p', { class: 'form-error', role: 'alert' });
  const renderChips = () => {
    clear(chips);
    for (const u of picked.values()) {
      chips.append(h('span', { class: 'chip', dataset: { user: u.username } }, u.display_name,
        h('button', { type: 'button', 'aria-label': `Remove ${u.username}`, onclick: () => { picked.delete(u.user_id); renderChips(); } }, '×')));
    }
  };
  const create = h('button', { type: 'submit', class: 'primary', id: 'group-create' }, 'Create group');
  const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => close() }, 'Cancel');
  const form = h('form', { class: 'dialog', id: 'new-group-dialog', role: 'dialog', 'aria-label': 'New group' },
    h('h3', {}, 'New group'),
    h('label', { class: 'field' }, h('span', {}, 'Name'), name),
    h('label', { class: 'field' }, h('span', {}, 'Members'),
      userPicker({ api, store, id: 'group-member-search', exclude: (id) => picked.has(id), onPick: (u) => { picked.set(u.user_id, u); renderChips(); } })),
    chips, err, h('div', { class: 'dialog-buttons' }, cancel, create));
  const overlay = h('div', { class: 'overlay', onclick: (e) => { if (e.target === overlay) close(); } }, form);
  const onKey = (e) => { if (e.key === 'Escape') close(); };
  function close() { overlay.remove(); document.removeEventListener('keydown', onKey); }
  document.addEventListener('keydown', onKey);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const n = name.value.trim();
    if (!n) { err.textContent = 'Give the group a name'; return; }
    create.disabled = true;
    try {
      const r = await messenger.createGroup(n, [...picked.keys()]);
      close();
      onCreated(r.conv_id);
    } catch (e2) {
      err.textContent = `Could not create the group: ${e2.message}`;
    } finally {
      create.disabled = false;
    }
  });
  root.append(overlay);
  name.focus();
}

const ROLE_ORDER = { owner: 0, admin: 1, member: 2 };

export function mountGroupPanel(el, { api, store, messenger, onClose, onLeft }) {
  let groupId = null;
  let loading = 0;

  async function load() {
    if (!groupId) return;
    const gid = groupId;
    // Removed or gone: the group is no longer ours to look at (the server
    // would answer 403); the chat view says so.
    if (store.convs.get(`g:${gid}`)?.left) return;
    const ticket = ++loading;
    try {
      const [g, members] = await Promise.all([messenger.loadGroup(gid), messenger.loadMembers(gid)]);
      if (ticket !== loading || gid !== groupId) return;
      render(g, members);
    } catch (e) {
      if (ticket !== loading) return;
      el.replaceChildren(h('div', { class: 'panel-head' }, h('h3', {}, 'Group'), closeBtn()),
        h('p', { class: 'form-error' }, e.status === 403 ? 'You are no longer a member of this group.' : e.message));
    }
  }

  const closeBtn = () => h('button', { class: 'icon-btn', id: 'panel-close', 'aria-label': 'Close', onclick: onClose }, icon('close'));

  function render(g, members) {
    const me = store.me.user_id;
    const myRole = g.role || members.find((m) => m.user.user_id === me)?.role || 'member';
    const canAdd = myRole === 'owner' || myRole === 'admin';
    const err = h('p', { class: 'form-error', role: 'alert' });
    const act = async (fn) => {
      err.textContent = '';
      try { await fn(); await load(); } catch (e) { err.textContent = e.message; }
    };
    members.sort((a, b) => (ROLE_ORDER[a.role] - ROLE_ORDER[b.role]) ||
      (a.user.display_name || '').localeCompare(b.user.display_name || ''));
    const rows = members.map((m) => {
      const u = m.user;
      const self = u.user_id === me;
      const canRemove = !self && (myRole === 'owner' || (myRole === 'admin' && m.role === 'member'));
      const canPromote = !self && myRole === 'owner' && m.role !== 'owner';
      return h('li', { class: 'member', dataset: { user: u.username, role: m.role } },
        avatar(u.display_name, u.user_id, u.avatar_url, 'sm'),
        h('span', { class: 'user-names' }, h('b', {}, u.display_name + (self ? ' (you)' : '')), h('small', {}, `@${u.username}`)),
        h('span', { class: `role role-${m.role}` }, m.role),
        canPromote ? h('button', {
          class: 'link promote', title: m.role === 'admin' ? 'Make member' : 'Make admin',
          onclick: () => act(() => api.setRole(g.group_id, u.user_id, m.role === 'admin' ? 'member' : 'admin')),
        }, m.role === 'admin' ? 'demote' : 'promote') : null,
        canRemove ? h('button', {
          class: 'icon-btn remove', title: `Remove ${u.username}`, 'aria-label': `Remove ${u.username}`,
          onclick: () => act(() => api.removeMember(g.group_id, u.user_id)),
        }, '×') : null);
    });
    const leave = h('button', {
      class: 'danger', id: 'group-leave',
      onclick: async () => {
        if (!window.confirm(`Leave “${g.name}”?`)) return;
        try { await messenger.leaveGroup(g.group_id); onLeft(); } catch (e) { err.textContent = e.message; }
      },
    }, 'Leave group');
    const memberIds = new Set(members.map((m) => m.user.user_id));
    el.replaceChildren(
      h('div', { class: 'panel-head' }, h('h3', { id: 'panel-title' }, g.name), closeBtn()),
      h('p', { class: 'muted' }, `${g.member_count} member${g.member_count === 1 ? '' : 's'} · you are ${myRole}`),
      canAdd ? userPicker({
        api, store, id: 'panel-add-member', exclude: (id) => memberIds.has(id),
        onPick: (u) => act(() => api.addMembers(g.group_id, [u.user_id])),
      }) : null,
      err,
      h('ul', { class: 'members', id: 'member-list' }, rows),
      h('div', { class: 'panel-foot' }, leave));
  }

  const refresh = debounce(load, 200);
  store.on('group', (gid) => {
    if (gid === groupId && !store.convs.get(`g:${gid}`)?.left) refresh();
  });

  return {
    show(gid) {
      groupId = gid;
      el.hidden = false;
      el.replaceChildren(h('div', { class: 'panel-head' }, h('h3', {}, 'Group'), closeBtn()), h('p', { class: 'muted' }, 'Loading…'));
      load();
    },
    hide() { groupId = null; el.hidden = true; },
    get groupId() { return groupId; },
  };
}
