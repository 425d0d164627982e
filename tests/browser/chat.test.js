// Private chats in the browser: two users chat both ways, unread badges and
// read marks, typing, a failed send with retry, recall, reload, and a server
// killed (SIGKILL) and restarted mid-conversation.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { suite, sleep } from './harness.js';

const ctx = suite();
let server;
let alice;
let bob;
const tokens = {};

async function token(name) {
  if (!tokens[name]) tokens[name] = (await server.login(name)).access_token;
  return tokens[name];
}

async function userId(name) {
  const r = await server.api('GET', `/users?prefix=${name}&limit=5`, undefined, await token('alice'));
  return r.users.find((u) => u.username === name).user_id;
}

// The statuses of the marks on the user's own messages, by text.
async function marks(client) {
  return client.page.$$eval('#messages .msg.mine', (els) => Object.fromEntries(els.map((e) => [
    e.querySelector('.text')?.textContent, e.querySelector('.mark')?.dataset.status])));
}

before(() => { server = ctx.server; });

test('two users register and chat both ways; unread badges and read marks follow', async () => {
  alice = await ctx.open('alice');
  bob = await ctx.open('bob');
  await alice.shot('01-empty');

  await alice.startChat('bob');
  await alice.send('Hi Bob!');
  await alice.waitText('Hi Bob!');
  await alice.page.waitForSelector('#messages .msg.mine[data-seq="1"] .mark[data-status]');

  // Bob, with no chat open, gets a badge that counts.
  await bob.page.waitForSelector('#conv-list button[data-title="Alice"] .badge');
  await bob.page.waitForSelector('#conv-list button[data-title="Alice"] .presence.on');
  assert.equal(await bob.badge('Alice'), 1);
  await alice.send('Are you there?');
  await bob.page.waitForFunction(() => document.querySelector('#conv-list button[data-title="Alice"] .badge')?.textContent === '2');
  assert.match(await bob.page.textContent('#conv-list button[data-title="Alice"] .conv-preview'), /Are you there\?/);
  const before = await marks(alice);
  assert.notEqual(before['Hi Bob!'], 'read');
  assert.ok(['sent', 'delivered'].includes(before['Are you there?']), JSON.stringify(before));
  await bob.shot('02-unread-badge');

  // Bob opens the chat: his badge goes, Alice's marks turn to read.
  await bob.openConv('Alice');
  await bob.waitText('Are you there?');
  assert.deepEqual(await bob.texts(), ['Hi Bob!', 'Are you there?']);
  await bob.page.waitForSelector('#conv-list button[data-title="Alice"]:not(:has(.badge))');
  await alice.page.waitForFunction(() => [...document.querySelectorAll('#messages .msg.mine .mark')]
    .every((m) => m.dataset.status === 'read'));

  // Typing shows on the other side.
  await bob.page.type('#composer-input', 'Fine');
  await alice.page.waitForSelector('#chat-sub.typing');
  await bob.page.fill('#composer-input', '');
  await bob.send('Yes! Grüße, Alice');
  await alice.waitText('Yes! Grüße, Alice');
  // Alice has the chat open, so Bob's message is read at once.
  await bob.page.waitForSelector('#messages .msg.mine .mark[data-status="read"]');
  await alice.send('Great, let us test this client.');
  await bob.waitText('Great, let us test this client.');
  await alice.page.waitForSelector('#messages .msg.mine[data-seq="4"] .mark[data-status="read"]');
  assert.deepEqual(await alice.texts(), ['Hi Bob!', 'Are you there?', 'Yes! Grüße, Alice', 'Great, let us test this client.']);
  await alice.shot('03-chat');
  await bob.shot('03-chat-bob');
});

test('a failed send shows an error; retry with the same client_msg_id delivers it once', async () => {
  const aliceId = await userId('alice');
  await server.api('POST', `/blocks/${aliceId}`, undefined, await token('bob'));
  await alice.send('Can you see this?');
  const failed = await alice.page.waitForSelector('#messages .msg.failed');
  assert.match(await failed.textContent(), /Not sent: Not allowed/);
  const cmid = await failed.getAttribute('data-cmid');
  assert.ok(cmid);
  await alice.shot('04-send-failed');

  await server.api('DELETE', `/blocks/${aliceId}`, undefined, await token('bob'));
  await alice.page.click('#messages .msg.failed .retry');
  await alice.page.waitForSelector(`#messages .msg.mine[data-cmid="${cmid}"][data-seq="5"]`);
  assert.equal(await alice.page.$('#messages .msg.failed'), null);
  await bob.waitText('Can you see this?');
  await sleep(300);
  assert.equal((await bob.texts()).filter((t) => t === 'Can you see this?').length, 1);
});

test('recall replaces a message for everyone', async () => {
  await bob.send('oops, wrong chat');
  await alice.waitText('oops, wrong chat');
  const msg = bob.page.locator('#messages .msg.mine', { has: bob.page.locator('.text', { hasText: /^oops, wrong chat$/ }) });
  await msg.hover();
  await msg.locator('.recall').click();
  await bob.page.waitForSelector('#messages .msg.mine .recalled');
  await alice.page.waitForSelector('#messages .msg.theirs .recalled');
  assert.ok(!(await alice.texts()).includes('oops, wrong chat'));
  assert.match(await alice.page.textContent('#conv-list button[data-title="Bob"] .conv-preview'), /recalled/);
});

test('a reload keeps the history', async () => {
  const expected = await bob.texts();
  await bob.page.reload();
  await bob.page.waitForSelector('#auth-form');
  await bob.shot('00-sign-in');
  await bob.login();
  await bob.openConv('Alice');
  await bob.waitText('Can you see this?');
  assert.deepEqual(await bob.texts(), expected);
  assert.equal(await bob.page.$$eval('#messages .recalled', (e) => e.length), 1);
});

test('killing and restarting the server mid-conversation loses nothing', async () => {
  const expected = await alice.texts();
  // A burst, then SIGKILL while its replies may still be in flight.
  for (let i = 1; i <= 5; i++) {
    await alice.send(`burst ${i}`);
    expected.push(`burst ${i}`);
  }
  await server.kill('SIGKILL');
  await alice.page.waitForSelector('#conn-state[data-state=offline], #conn-state[data-state=connecting]');
  await bob.page.waitForSelector('#conn-state[data-state=offline], #conn-state[data-state=connecting]');
  // Written while the server is down: shown as waiting, sent on reconnect.
  for (let i = 1; i <= 3; i++) {
    await alice.send(`offline ${i}`);
    expected.push(`offline ${i}`);
  }
  await alice.page.waitForSelector('#messages .msg.queued');
  await alice.shot('05-offline');
  // Bob's page stays away until the server has moved on without it.
  await bob.page.context().setOffline(true);
  await server.start();
  // Sent by another device of Alice's while Bob's page is away.
  for (const text of ['from my phone', 'and one more']) {
    await server.api('POST', '/messages', {
      to: { user: await userId('bob') }, client_msg_id: `rest-${text}`, body: { text },
    }, await token('alice'));
    expected.push(text);
  }
  await alice.waitOnline(20_000);
  await alice.waitText('and one more');
  assert.equal(await bob.page.getAttribute('#conn-state', 'data-state') === 'online', false);
  const syncsBefore = bob.framesSent.filter((f) => f.op === 'sync').length;
  await bob.page.context().setOffline(false);
  await bob.waitOnline(20_000);
  await bob.waitText('and one more', 15_000);
  // Bob's open chat caught up through `sync` after the hello.
  assert.ok(bob.framesSent.filter((f) => f.op === 'sync').length > syncsBefore);
  await bob.waitText('offline 3', 15_000);
  await alice.page.waitForFunction(() => !document.querySelector('#messages .msg.queued, #messages .msg.sending, #messages .msg.failed'), null, { timeout: 15_000 });
  const sorted = (l) => [...l].sort();
  // Nothing missing, nothing twice, same order on both sides.
  const a = await alice.texts();
  const b = await bob.texts();
  assert.deepEqual(sorted(a), sorted(expected));
  assert.deepEqual(b, a);
  // The bursts and the offline sends keep the order they were written in.
  const order = a.filter((t) => /^(burst|offline)/.test(t));
  assert.deepEqual(order, expected.filter((t) => /^(burst|offline)/.test(t)));
  // And the server agrees: seqs 1..n with no duplicate client_msg_id.
  const hist = await server.api('GET', `/conversations/${encodeURIComponent(await convId())}/messages?limit=200`, undefined, await token('bob'));
  assert.deepEqual(hist.messages.map((m) => m.seq), hist.messages.map((_, i) => i + 1));
  assert.equal(hist.messages.filter((m) => /^(burst|offline)/.test(m.body?.text || '')).length, 8);
  await bob.shot('06-after-restart');
});

test('phone-sized screen: list, then chat with a back button', async () => {
  const phone = await ctx.open('bob', { viewport: { width: 390, height: 760 }, register: false });
  try {
    await phone.page.waitForSelector('#conv-list button[data-title="Alice"]');
    assert.equal(await phone.page.isVisible('#chat'), false);
    await phone.shot('07-phone-list');
    await phone.openConv('Alice');
    assert.equal(await phone.page.isVisible('#sidebar'), false);
    await phone.waitText('from my phone');
    await phone.shot('08-phone-chat');
    await phone.page.click('#chat-back');
    await phone.page.waitForSelector('#sidebar', { state: 'visible' });
    // Logging out ends the session: the next REST call with its token fails.
    await phone.page.click('#logout');
    await phone.page.waitForSelector('#auth-form');
    assert.match(await phone.page.textContent('#auth-info'), /signed out/);
  } finally {
    await phone.page.context().close();
  }
});

test('scroll-back loads older pages in order, without duplicates', async () => {
  await server.api('POST', '/auth/register', { username: 'dave', password: 'password123' });
  const dave = (await server.login('dave')).user_id;
  const sent = [];
  for (let i = 1; i <= 90; i++) {
    const text = `history ${String(i).padStart(2, '0')}`;
    await server.api('POST', '/messages', { to: { user: dave }, client_msg_id: `h${i}`, body: { text } }, await token('alice'));
    sent.push(text);
  }
  const d = await ctx.open('dave', { register: false, viewport: { width: 800, height: 600 } });
  assert.equal(await d.badge('Alice'), 90);
  await d.openConv('Alice');
  await d.waitText('history 90');
  assert.equal((await d.texts()).length, 50); // the latest page
  await d.page.evaluate(() => { document.getElementById('messages').scrollTop = 0; });
  await d.waitText('history 01');
  assert.deepEqual(await d.texts(), sent);
  assert.equal(await d.page.isVisible('#load-older'), false);
  // Opening the chat read them all.
  await d.page.waitForSelector('#conv-list button[data-title="Alice"]:not(:has(.badge))');
});

async function convId() {
  const [a, b] = [BigInt(await userId('alice')), BigInt(await userId('bob'))];
  return a < b ? `p:${a}:${b}` : `p:${b}:${a}`;
}
