// Groups in the browser: three users, a group created in the UI, a member
// list with roles, a member removed who stops receiving, a member leaving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { suite, sleep } from './harness.js';

// Access tokens live 4 s here, so the pages must refresh them as they go (a
// request that meets an expired token gets a 401, refreshes and retries).
const ctx = suite({ MPIM_AUTH_ACCESS_TTL_S: '4' }, { allow: /status of 401 \(Unauthorized\)/ });
const users = {};

test('a group of three created in the UI; everyone chats', async () => {
  for (const name of ['alice', 'bob', 'carol']) users[name] = await ctx.open(name);
  const { alice, bob, carol } = users;

  await alice.page.click('#new-group');
  await alice.page.fill('#group-name', 'Weekend trip');
  for (const name of ['bob', 'carol']) {
    await alice.page.fill('#group-member-search', name);
    await alice.page.click(`#new-group-dialog .search-results button[data-user="${name}"]`);
    await alice.page.waitForSelector(`#group-chips .chip[data-user="${name}"]`);
  }
  await alice.shot('10-new-group');
  await alice.page.click('#group-create');
  await alice.page.waitForSelector('#chat-title:text-is("Weekend trip")');
  await alice.page.waitForSelector('#messages .sys:has-text("created the group")');

  for (const c of [bob, carol]) {
    await c.page.waitForSelector('#conv-list button[data-title="Weekend trip"]');
  }
  await alice.send('Hello group! Saturday at 10?');
  await bob.openConv('Weekend trip');
  await bob.waitText('Hello group! Saturday at 10?');
  await bob.send('Works for me');
  // "created the group" and two messages, as the server counts unread.
  await carol.page.waitForFunction(() => document.querySelector('#conv-list button[data-title="Weekend trip"] .badge')?.textContent === '3');
  await carol.openConv('Weekend trip');
  await carol.waitText('Works for me');
  // Senders are named in groups.
  assert.deepEqual(await carol.page.$$eval('#messages .msg.theirs .sender', (e) => e.map((x) => x.textContent)), ['Alice', 'Bob']);
  await carol.send('Count me in!');
  await alice.waitText('Count me in!');
  await bob.waitText('Count me in!');
  // Read marks count readers in groups.
  await alice.page.waitForSelector('#messages .msg.mine .mark[data-status="read"]');
  // A private chat next to the group, unread on Alice's side.
  await bob.startChat('alice');
  await bob.send('Shall I book the train tickets?');
  await alice.page.waitForSelector('#conv-list button[data-title="Bob"] .badge');
  await bob.openConv('Weekend trip');
  // Most recent first, pinned first.
  const order = () => alice.page.$$eval('#conv-list button.conv', (b) => b.map((x) => x.dataset.title));
  assert.deepEqual(await order(), ['Bob', 'Weekend trip']);
  await alice.page.click('#chat-pin');
  await alice.page.waitForSelector('#conv-list button[data-title="Weekend trip"] .pin');
  assert.deepEqual(await order(), ['Weekend trip', 'Bob']);
  assert.deepEqual(await alice.texts(), ['Hello group! Saturday at 10?', 'Works for me', 'Count me in!']);
  await carol.shot('11-group-chat');
});

test('the member list shows roles; a removed member stops receiving', async () => {
  const { alice, bob, carol } = users;
  await alice.page.click('#chat-info');
  await alice.page.waitForSelector('#member-list .member[data-user="carol"]');
  const roles = await alice.page.$$eval('#member-list .member', (els) => els.map((e) => `${e.dataset.user}:${e.dataset.role}`));
  assert.deepEqual(roles, ['alice:owner', 'bob:member', 'carol:member']);

  await alice.page.click('#member-list .member[data-user="bob"] .promote');
  await alice.page.waitForSelector('#member-list .member[data-user="bob"][data-role="admin"]');
  await bob.page.waitForSelector('#messages .sys:has-text("Alice made you an admin")');
  await carol.page.waitForSelector('#messages .sys:has-text("Alice made Bob an admin")');
  await alice.shot('12-group-members');

  await alice.page.click('#member-list .member[data-user="carol"] .remove');
  await alice.page.waitForFunction(() => !document.querySelector('#member-list .member[data-user="carol"]'));
  await carol.page.waitForSelector('#chat-notice:has-text("You were removed")');
  assert.equal(await carol.page.isVisible('#composer'), false);
  await bob.page.waitForSelector('#messages .sys:has-text("removed Carol")');

  await alice.send('Carol cannot read this');
  await bob.waitText('Carol cannot read this');
  await sleep(1000);
  assert.ok(!(await carol.texts()).includes('Carol cannot read this'));
  await carol.shot('13-removed');
  // Nor can she fetch it.
  const t = (await ctx.server.login('carol')).access_token;
  const groups = await ctx.server.api('GET', '/groups', undefined, t);
  assert.equal(groups.groups.length, 0);
});

test('a member leaves from the group panel', async () => {
  const { alice, bob } = users;
  bob.page.once('dialog', (d) => d.accept());
  await bob.page.click('#chat-info');
  await bob.page.waitForSelector('#member-list .member[data-user="bob"][data-role="admin"]');
  await bob.page.click('#group-leave');
  await bob.page.waitForFunction(() => !document.querySelector('#conv-list button[data-title="Weekend trip"]'));
  await alice.page.waitForSelector('#messages .sys:has-text("Bob left")');
  await alice.page.waitForFunction(() => document.querySelectorAll('#member-list .member').length === 1);
});

test('short-lived access tokens are refreshed without signing anyone out', async () => {
  const { alice } = users;
  await sleep(4500); // every token issued so far has expired
  await alice.send('Still here after my token expired');
  await alice.page.waitForSelector('#messages .msg.mine[data-seq] .text:text-is("Still here after my token expired")');
  await alice.page.click('#panel-close');
  await alice.page.click('#chat-info');
  await alice.page.waitForSelector('#member-list .member[data-user="alice"]');
  assert.ok(alice.refreshes >= 2, `refreshes: ${alice.refreshes}`);
  assert.equal(await alice.page.getAttribute('#conn-state', 'data-state'), 'online');
});
