// The demo chat: one channel at a time on the node that served this page,
// through the client library that node carries (/lib/wsrelay.js), so page
// and library always match the node. A chat message is the JSON string
// {"from": name, "text": text}; anything else on the channel is shown as
// it came. ?relay=ws://host:port/connect talks to another node instead.
//
// User text only ever reaches the page through textContent.
//
// A node with [auth] required answers "not authenticated": the page then
// shows a dev-token field; the token pasted there is used at once and on
// every reconnect (kept for this tab in sessionStorage).
//
// The channel is joined with recover (PROTOCOL.md 7.3): after a dropped
// connection the node replays what the page missed. When it cannot (the
// "gap": another node behind the URL, or a restarted one - history is per
// node) the page asks the node it is on now for its history and shows the
// messages it had not shown (each chat message carries a random id): when
// that history reaches back to the last message the page saw, nothing is
// missing, else the page says so. The member list is
// presence (7.4): presence() when joining and reconnecting, then the
// join and leave events of signed-in users; anonymous visitors only count.

import { WsRelay } from "/lib/wsrelay.js";

const $ = (id) => document.getElementById(id);
const ui = {
  node: $("node"), status: $("status"), joinForm: $("join-form"),
  name: $("name"), channel: $("channel"), password: $("password"),
  join: $("join"), leave: $("leave"), error: $("error"),
  errorText: $("error-text"), errorClose: $("error-close"), room: $("room"),
  messages: $("messages"), sendForm: $("send-form"), text: $("text"),
  send: $("send"), tokenForm: $("token-form"), token: $("token"),
  members: $("members"), membersCount: $("members-count"),
  memberList: $("member-list"),
};

const TOKEN_KEY = "wsrelay-chat-token";

const params = new URLSearchParams(location.search);
const scheme = location.protocol === "https:" ? "wss" : "ws";
const relayUrl = params.get("relay") || `${scheme}://${location.host}/connect`;

// A demo should come back quickly after a node restart: retry at least
// every 5 s instead of the library's 30 s ceiling.
const relay = new WsRelay(relayUrl, {
  maxDelayMs: 5000,
  getToken: () => sessionStorage.getItem(TOKEN_KEY), // null: none yet
});

let channel = null; // the channel joined, or null
let busy = false; // a join or leave is in flight

// For the browser console and the browser test: the client, and every
// connection state shown, in order.
const states = [{ state: "connecting", text: "connecting", at: Date.now() }];
window.wsrelayChat = { relay, states };

// ------------------------------------------------------------ connection

let countdown = null;

function stopCountdown() {
  if (countdown !== null) clearInterval(countdown);
  countdown = null;
}

function showState(state, text) {
  if (ui.status.dataset.state !== state || ui.status.textContent !== text) {
    ui.status.dataset.state = state;
    ui.status.textContent = text;
    states.push({ state, text, at: Date.now() });
  }
}

relay.on("open", ({ recovered }) => {
  stopCountdown();
  const again = states.some((s) => s.state === "open");
  showState("open", "open");
  if (again && channel && recovered[channel] === true) {
    system(`Reconnected; back in #${channel}, nothing missed.`);
  } else if (again) {
    system(channel ? `Reconnected; back in #${channel}.` : "Reconnected.");
  }
  if (channel) refreshMembers();
});

// A recovering subscription came back but the node could not replay: it
// restarted (history lives in its memory), the reconnect reached another
// node, or the gap passed its history. The node now serving the page may
// still keep what was missed (another node that had the channel open):
// its history fills in, in place, before what arrives live meanwhile.
relay.on("gap", ({ channel: name }) => {
  if (name !== channel) return;
  catchUp(name, system("Reconnected to a node that could not replay; catching up…"));
});

async function catchUp(name, marker) {
  const since = lastId;
  let found = [];
  let reaches = false;
  try {
    const { messages } = await relay.history(name);
    const chat = messages.map(({ message }) => parseChat(message)).filter((m) => m.id !== null);
    const at = chat.findIndex((m) => m.id === since);
    reaches = since !== null && at >= 0;
    found = chat.slice(at + 1).filter((m) => !seen.has(m.id));
  } catch (err) {
    console.debug("wsrelay history:", reasonOf(err));
  }
  if (name !== channel) return;
  keepingBottom(() => {
    let anchor = marker;
    for (const m of found) {
      remember(m.id, true);
      const li = messageLine({ from: m.from, text: m.text, mine: false });
      li.dataset.recovered = "history";
      anchor.after(li);
      anchor = li;
    }
  });
  const n = `${found.length} message${found.length === 1 ? "" : "s"}`;
  marker.textContent = reaches
    ? `Reconnected to a node that could not replay; caught up from its history (${n}), nothing missed.`
    : `Messages sent while you were away could not all be recovered (the node restarted or its history ` +
      `did not reach back)${found.length ? `; ${n} found in its history` : ""}.`;
  marker.dataset.catchup = reaches ? "complete" : "incomplete";
}

relay.on("close", ({ code, reason }) => {
  stopCountdown();
  showState("closed", "closed");
  const why = reason ? `${code} ${reason}` : `${code}`;
  if (channel) system(`Connection lost (${why}).`);
});

// One event per attempt: count down to it, then show it connecting.
relay.on("reconnecting", ({ attempt, delayMs }) => {
  stopCountdown();
  const at = Date.now() + delayMs;
  const nth = attempt > 1 ? ` (attempt ${attempt})` : "";
  const tick = () => {
    const left = Math.ceil((at - Date.now()) / 1000);
    if (left > 0) {
      showState("reconnecting", `reconnecting in ${left}s${nth}`);
    } else {
      stopCountdown();
      showState("connecting", `connecting${nth}`);
    }
  };
  tick();
  if (countdown === null && Date.now() < at) countdown = setInterval(tick, 200);
});

// Socket errors come with every failed attempt and say nothing the state
// does not; keep them for the console.
relay.on("error", (err) => console.debug("wsrelay:", err.message));

// ------------------------------------------------------ authentication

const AUTH_REASONS = ["not authenticated", "invalid token", "token expired", "unauthorized"];

function askToken(reason) {
  if (ui.tokenForm.hidden) {
    ui.tokenForm.hidden = false;
    system(`The node requires a token (${reason}).`);
  }
}

relay.on("auth", ({ user }) => {
  ui.tokenForm.hidden = true;
  ui.node.title = `Signed in as ${user}`;
});

relay.on("autherror", ({ reason }) => {
  if (AUTH_REASONS.includes(reason)) askToken(reason);
});

ui.tokenForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const token = ui.token.value.trim();
  if (!token) return;
  hideError();
  try {
    const { user } = await relay.authenticate(token);
    sessionStorage.setItem(TOKEN_KEY, token);
    ui.token.value = "";
    system(`Signed in as ${user}.`);
  } catch (err) {
    showError(`Token refused: ${reasonOf(err)}`);
  }
});

relay.on("unsubscribed", ({ channel: name, reason }) => {
  if (name !== channel) return;
  showError(`You are no longer in #${name}: ${reason}`);
  setChannel(null);
});

// A chat message: {"from", "text", "id"}; anything else is shown raw
// (from and id null).
function parseChat(message) {
  try {
    const m = JSON.parse(message);
    if (m && typeof m.from === "string" && typeof m.text === "string") {
      return { from: m.from, text: m.text, id: typeof m.id === "string" ? m.id : null };
    }
  } catch {
    // not ours: show the raw string
  }
  return { from: null, text: message, id: null };
}

// The ids of the chat messages shown (the newest few hundred), and the
// last one the node has confirmed (received, or an own send it took; not
// one still queued while away): a catch-up from history starts after it
// and skips the others.
const SEEN_MAX = 500;
const seen = new Set();
let lastId = null;

function remember(id, confirmed) {
  if (id === null) return;
  seen.add(id);
  if (seen.size > SEEN_MAX) seen.delete(seen.values().next().value);
  if (confirmed) lastId = id;
}

function newId() {
  const b = crypto.getRandomValues(new Uint8Array(9));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

relay.on("message", ({ channel: name, message }) => {
  if (name !== channel) return;
  const m = parseChat(message);
  if (m.id !== null && seen.has(m.id)) return; // already filled in from history
  remember(m.id, true);
  addMessage({ from: m.from, text: m.text, mine: false });
});

// ------------------------------------------------------------- members

let members = { clients: 0, users: new Set() };
let membersTimer = null;

function renderMembers() {
  ui.members.hidden = !channel;
  const n = members.users.size;
  ui.membersCount.textContent = `${members.clients} here, ${n} signed in`;
  const list = [...members.users].sort();
  ui.memberList.replaceChildren(
    ...list.map((user) => {
      const li = document.createElement("li");
      li.textContent = user;
      li.dataset.user = user;
      if (user === relay.user) li.className = "me";
      return li;
    }),
  );
}

// The whole picture from the mesh; the events keep it current between.
async function refreshMembers() {
  const name = channel;
  if (!name) return;
  try {
    const { clients, users } = await relay.presence(name);
    if (name !== channel) return;
    members = { clients, users: new Set(users) };
    renderMembers();
  } catch (err) {
    console.debug("wsrelay presence:", reasonOf(err));
  }
}

relay.on("join", ({ channel: name, user }) => {
  // two first subscriptions of one user on two nodes at once may both be
  // announced (PROTOCOL.md 7.5.9), and presence() may have listed it
  if (name !== channel || members.users.has(user)) return;
  members.users.add(user);
  members.clients += 1;
  renderMembers();
  system(`${user} joined.`);
});

relay.on("leave", ({ channel: name, user }) => {
  if (name !== channel || !members.users.has(user)) return;
  members.users.delete(user);
  members.clients = Math.max(members.users.size, members.clients - 1);
  renderMembers();
  system(`${user} left.`);
});

// anonymous visitors cause no event: their count is refreshed now and then
function watchMembers(on) {
  if (membersTimer !== null) clearInterval(membersTimer);
  membersTimer = on ? setInterval(refreshMembers, 15000) : null;
}

// The node's name, from its /health: which node of the mesh this is.
if (!params.get("relay")) {
  fetch("/health", { cache: "no-store" })
    .then((r) => r.json())
    .then((h) => {
      if (typeof h.node === "string") ui.node.textContent = `node ${h.node}`;
    })
    .catch(() => {});
}

// -------------------------------------------------------------- messages

function time() {
  return new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// Runs @change on the message list; a list scrolled to its end stays there.
function keepingBottom(change) {
  const list = ui.messages;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  change(list);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function addLine(li) {
  keepingBottom((list) => list.append(li));
  return li;
}

function addMessage(m) {
  return addLine(messageLine(m));
}

function messageLine({ from, text, mine }) {
  const li = document.createElement("li");
  li.className = mine ? "msg mine" : "msg";
  li.dataset.from = from ?? "";
  const who = document.createElement("span");
  who.className = "from";
  who.textContent = from ?? "(unnamed)";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  const when = document.createElement("time");
  when.textContent = time();
  li.append(who, body, when);
  return li;
}

function system(text) {
  const li = document.createElement("li");
  li.className = "system";
  li.textContent = text;
  return addLine(li);
}

// ---------------------------------------------------------------- errors

function showError(text) {
  ui.errorText.textContent = text;
  ui.error.hidden = false;
}

function hideError() {
  ui.error.hidden = true;
  ui.errorText.textContent = "";
}

ui.errorClose.addEventListener("click", hideError);

const reasonOf = (err) => (err && (err.reason || err.message)) || String(err);

// ------------------------------------------------------------ join, leave

function setChannel(name) {
  if (name !== channel) lastId = null; // a catch-up is per channel
  channel = name;
  members = { clients: 0, users: new Set() };
  renderMembers();
  watchMembers(!!name);
  ui.room.textContent = name ? `#${name}` : "Not in a channel";
  ui.text.disabled = !name;
  ui.send.disabled = !name;
  ui.text.placeholder = name ? `Message #${name}` : "Join a channel to chat";
  ui.leave.hidden = !name;
  ui.join.textContent = name ? "Switch" : "Join";
  document.title = name ? `#${name} · wsrelay chat` : "wsrelay chat";
}

function setBusy(on) {
  busy = on;
  ui.join.disabled = on;
  ui.leave.disabled = on;
}

ui.name.value = localStorage.getItem("wsrelay-chat-name") || "";
ui.channel.value = params.get("channel") || ui.channel.value;

ui.joinForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (busy) return;
  const name = ui.channel.value.trim();
  const password = ui.password.value;
  if (!ui.name.value.trim() || !name) return;
  localStorage.setItem("wsrelay-chat-name", ui.name.value.trim());
  hideError();
  setBusy(true);
  ui.join.textContent = "Joining…";
  try {
    if (channel && channel !== name) {
      const old = channel;
      setChannel(null);
      await relay.unsubscribe(old).catch(() => {});
      system(`You left #${old}.`);
    }
    const options = { recover: true, presenceEvents: true };
    if (password) options.password = password;
    await relay.subscribe(name, options);
    ui.password.value = "";
    setChannel(name);
    refreshMembers();
    system(`You joined #${name}${password ? " (password protected)" : ""}.`);
    ui.text.focus();
  } catch (err) {
    setChannel(channel);
    if (AUTH_REASONS.includes(reasonOf(err))) askToken(reasonOf(err));
    showError(`Could not join #${name}: ${reasonOf(err)}`);
  } finally {
    setBusy(false);
  }
});

ui.leave.addEventListener("click", async () => {
  if (busy || !channel) return;
  const old = channel;
  setBusy(true);
  setChannel(null);
  try {
    await relay.unsubscribe(old);
    system(`You left #${old}.`);
  } catch (err) {
    showError(`Could not leave #${old}: ${reasonOf(err)}`);
  } finally {
    setBusy(false);
  }
});

// ------------------------------------------------------------------ send

function myName() {
  return ui.name.value.trim() || "anonymous";
}

// Shown at once, marked sent when the node takes it. While reconnecting
// the library queues it, so the chat goes on across a node restart.
ui.sendForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = ui.text.value.trim();
  const from = myName();
  if (!text || !channel) return;
  ui.text.value = "";
  const id = newId();
  const sentOn = channel;
  remember(id, false);
  const li = addMessage({ from, text, mine: true });
  li.dataset.status = "sending";
  try {
    await relay.send(channel, JSON.stringify({ from, text, id }));
    li.dataset.status = "sent";
    if (channel === sentOn) remember(id, true);
  } catch (err) {
    li.dataset.status = "failed";
    li.title = `not sent: ${reasonOf(err)}`;
    if (AUTH_REASONS.includes(reasonOf(err))) askToken(reasonOf(err));
    showError(`Message not sent: ${reasonOf(err)}`);
  }
});
