// The labeling page: answers go to an outbox (kept in localStorage) and are sent in order, each with its
// own client token, until the server acknowledges them: a network outage or a server restart loses
// nothing and doubles nothing. Up to two pairs wait preloaded behind the one on screen, so judging goes
// on through a short outage. Backspace reopens the pair just judged to change its answers.
(() => {
  const root = document.getElementById("labeling");
  const form = document.getElementById("judgement-form");
  if (!root || !form || !window.fetch) return;  // no pair, or an old browser: the plain form posts still work
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  const rows = Array.from(form.querySelectorAll("tr[data-row]"));
  const statusLine = document.getElementById("status");
  const offlineLine = document.getElementById("offline");
  const storageKey = `mhp-label-outbox:${root.dataset.user}`;
  const PRELOAD = 2;

  let current = JSON.parse(document.getElementById("current-pair").textContent);
  let upcoming = [];
  let outbox = loadOutbox();
  const history = [];  // answered pairs, newest last: {pair, answers, token}
  let revisiting = null, activeRow = 0, shownAt = performance.now();
  let flushing = false, retryDelay = 1000, retryTimer = null, offline = false;

  function loadOutbox() {
    try { return JSON.parse(localStorage.getItem(storageKey)) || []; } catch (error) { return []; }
  }
  function saveOutbox() { localStorage.setItem(storageKey, JSON.stringify(outbox)); showOutbox(); }

  const newToken = () => (crypto.randomUUID ? crypto.randomUUID()
    : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, c =>
        (c ^ crypto.getRandomValues(new Uint8Array(1))[0] & 15 >> c / 4).toString(16)));

  async function api(url, body) {
    const response = await fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf}, body: JSON.stringify(body)});
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));  // a proxy's error page is not JSON
    if (!response.ok) {
      throw Object.assign(new Error(data.detail || response.statusText), {status: response.status, code: data.code});
    }
    return data;
  }
  const unreachable = error => !error.status || error.status >= 500;  // the network or the server, not the answer

  // Every pair this page holds a lease on: a claim must not hand any of them out again.
  const heldIds = except => [current && current.pair_id, ...upcoming.map(p => p.pair_id),
    ...outbox.map(item => item.pair_id)].filter(id => id && id !== except).slice(0, 10);

  function showOutbox() {
    const waiting = outbox.length;
    offlineLine.hidden = !(offline && waiting);
    offlineLine.textContent = `Offline - ${waiting} answer${waiting === 1 ? "" : "s"} waiting; they are sent as soon as the server answers.`;
    root.dataset.waiting = waiting;
    root.dataset.upcoming = upcoming.length;
  }

  function fit() {
    // The images take whatever height the prompt, the rows and the buttons leave in the window.
    const sides = document.getElementById("sides");
    sides.style.height = "0px";
    const rest = root.getBoundingClientRect().bottom + window.scrollY;  // everything but the images
    sides.style.height = `${Math.max(120, window.innerHeight - rest - 12)}px`;
  }

  function preloadImages(pair) { [pair.left.url, pair.right.url].forEach(url => { new Image().src = url; }); }

  function addUpcoming(pair) {
    if (!pair || heldIds().includes(pair.pair_id)) return false;
    upcoming.push(pair);
    preloadImages(pair);
    if (!current) show(upcoming.shift());
    showOutbox();
    return true;
  }

  function setActive(index) {
    activeRow = Math.max(0, Math.min(rows.length - 1, index));
    rows.forEach((row, i) => row.classList.toggle("active", i === activeRow));
  }

  function show(pair, answers) {
    current = pair;
    const empty = !pair;
    form.hidden = empty;
    document.getElementById("skip-form").hidden = empty || Boolean(answers);
    document.getElementById("empty").hidden = !empty;
    document.getElementById("empty").textContent = offline
      ? "Waiting for the server to answer - your answers are kept." : "Nothing to judge right now. Thank you! Come back later.";
    if (empty) return;
    form.pair_id.value = pair.pair_id;
    document.querySelector("#skip-form [name=pair_id]").value = pair.pair_id;
    form.client_token.value = newToken();
    document.getElementById("prompt").textContent = pair.prompt;
    document.getElementById("left-image").src = pair.left.url;
    document.getElementById("right-image").src = pair.right.url;
    form.querySelectorAll("input[type=radio]").forEach(input => {
      input.checked = Boolean(answers) && answers[input.name] === input.value;
    });
    document.getElementById("revisit-note").hidden = !answers;
    document.getElementById("back-button").disabled = !history.length;
    setActive(0);
    shownAt = performance.now();
    fit();
  }

  async function refill() {
    while (!offline && upcoming.length < PRELOAD && root.dataset.exhausted !== "1") {
      try {
        const pair = await api(root.dataset.nextUrl, {exclude: heldIds()});
        if (!pair) { root.dataset.exhausted = "1"; if (!current) show(null); return; }
        if (!addUpcoming(pair)) return;  // a pair this page holds already: nothing more to preload now
      } catch (error) {
        if (unreachable(error)) goOffline();
        return;
      }
    }
  }

  function goOffline() {
    offline = true;
    showOutbox();
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 8000);
  }

  function settle(item, outcome, message) {
    outbox = outbox.filter(entry => entry.client_token !== item.client_token);
    saveOutbox();
    if (outcome === "saved") {
      const counter = document.getElementById("today-count");
      counter.textContent = Number(counter.textContent) + 1;
    }
    statusLine.textContent = message;
  }

  async function flush() {
    if (flushing) return;
    flushing = true;
    clearTimeout(retryTimer);
    try {
      while (outbox.length) {
        const item = outbox[0];
        const wantNext = upcoming.length < PRELOAD;
        const body = {pair_id: item.pair_id, answers: item.answers, client_token: item.client_token,
                      duration_ms: item.duration_ms, ...(wantNext ? {next: {exclude: heldIds(item.pair_id)}} : {})};
        let answer;
        try {
          answer = await api(root.dataset.submitUrl, body);  // a retry sends the same token: one judgement
        } catch (error) {
          if (unreachable(error)) { goOffline(); return; }
          settle(item, error.code === "already_judged" ? "already" : "refused",
                 error.code === "already_judged" ? error.message : `Not saved: ${error.message}`);
          continue;
        }
        offline = false;
        retryDelay = 1000;
        settle(item, answer.created ? "saved" : "already", "Saved.");
        if (answer.next) addUpcoming(answer.next);
      }
      offline = false;
      showOutbox();
      if (!current && !upcoming.length) show(null);
    } finally {
      flushing = false;
    }
    refill();
  }

  function answersOnForm() {
    const answers = {};
    for (const row of rows) {
      const checked = row.querySelector("input:checked");
      if (!checked) { setActive(rows.indexOf(row)); return null; }
      answers[row.dataset.key] = checked.value;
    }
    return answers;
  }

  async function revise(item, answers) {
    const queued = outbox.find(entry => entry.client_token === item.token);
    if (queued) { queued.answers = answers; saveOutbox(); statusLine.textContent = "Changed."; return; }
    try {
      await api(root.dataset.reviseUrl, {pair_id: item.pair.pair_id, answers});
      statusLine.textContent = "Changed.";
    } catch (error) {
      statusLine.textContent = `Not changed: ${error.message}`;
      return false;
    }
    return true;
  }

  form.addEventListener("submit", async event => {
    event.preventDefault();
    const answers = answersOnForm();
    if (!answers) { statusLine.textContent = "Answer every row first."; return; }
    if (revisiting) {
      const item = revisiting;
      revisiting = null;
      if (await revise(item, answers) !== false) item.answers = answers;
      history.push(item);
      show(upcoming.shift() || null);
      return;
    }
    const item = {pair_id: current.pair_id, answers, client_token: form.client_token.value,
                  duration_ms: Math.round(performance.now() - shownAt)};
    outbox.push(item);
    saveOutbox();
    delete root.dataset.exhausted;  // the queue may have grown since it last came back empty
    history.push({pair: current, answers, token: item.client_token});
    if (history.length > 20) history.shift();
    statusLine.textContent = "Saving…";
    show(upcoming.shift() || null);
    flush();
  });

  function back() {
    if (!history.length) return;
    if (current && !revisiting) upcoming.unshift(current);
    revisiting = history.pop();
    show(revisiting.pair, revisiting.answers);
    statusLine.textContent = "Change your answers, then submit.";
  }
  document.getElementById("back-button").addEventListener("click", back);

  document.getElementById("skip-form").addEventListener("submit", async event => {
    event.preventDefault();
    document.activeElement.blur();  // back to judging keys
    try {
      await api(root.dataset.skipUrl, {pair_id: current.pair_id, reason: document.getElementById("skip-reason").value});
      statusLine.textContent = "Skipped.";
      show(upcoming.shift() || null);
      refill();
    } catch (error) {
      statusLine.textContent = error.message;
    }
  });

  function answer(value) {
    rows[activeRow].querySelector(`input[value=${value}]`).checked = true;
    setActive(activeRow + 1);
  }

  // Zoom: both images side by side at full size; one transform moves both, so the eye compares the same spot.
  const zoom = document.getElementById("zoom");
  const view = {scale: 1, x: 0, y: 0};
  function paint() {
    zoom.querySelectorAll("img").forEach(img => {
      img.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
    });
  }
  function openZoom() {
    document.getElementById("zoom-left").src = document.getElementById("left-image").src;
    document.getElementById("zoom-right").src = document.getElementById("right-image").src;
    Object.assign(view, {scale: 1, x: 0, y: 0});
    paint();
    zoom.classList.add("open");
  }
  const closeZoom = () => zoom.classList.remove("open");
  zoom.addEventListener("wheel", event => {
    event.preventDefault();
    view.scale = Math.min(8, Math.max(0.25, view.scale * (event.deltaY < 0 ? 1.15 : 1 / 1.15)));
    paint();
  }, {passive: false});
  let drag = null;
  zoom.addEventListener("pointerdown", event => { drag = {x: event.clientX - view.x, y: event.clientY - view.y}; });
  zoom.addEventListener("pointermove", event => {
    if (!drag) return;
    view.x = event.clientX - drag.x;
    view.y = event.clientY - drag.y;
    paint();
  });
  zoom.addEventListener("pointerup", () => { drag = null; });
  zoom.addEventListener("dblclick", closeZoom);
  ["left-image", "right-image"].forEach(id => document.getElementById(id).addEventListener("click", openZoom));

  const keys = {
    ArrowLeft: () => answer("left"), 1: () => answer("left"),
    ArrowDown: () => answer("tie"), 2: () => answer("tie"),
    ArrowRight: () => answer("right"), 3: () => answer("right"),
    ArrowUp: () => setActive(activeRow - 1),
    Enter: () => form.requestSubmit(),
    Backspace: back,
    g: () => document.body.classList.toggle("show-guidelines"),
    z: openZoom,
    "+": () => { view.scale = Math.min(8, view.scale * 1.25); paint(); },
    "-": () => { view.scale = Math.max(0.25, view.scale / 1.25); paint(); },
    Escape: closeZoom,
    s: () => document.getElementById("skip-reason").focus(),
  };
  document.addEventListener("keydown", event => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest("#skip-form")) {
      // The reason list has the focus: arrows pick a reason, Enter skips, Esc goes back to judging.
      if (event.key === "Enter") { event.preventDefault(); document.getElementById("skip-form").requestSubmit(); }
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const action = keys[event.key.length === 1 ? event.key.toLowerCase() : event.key];
    if (!action || (form.hidden && !["g", "Escape"].includes(event.key))) return;
    event.preventDefault();
    action();
  });
  rows.forEach((row, i) => row.addEventListener("click", () => setActive(i)));
  window.addEventListener("resize", fit);
  window.addEventListener("online", flush);

  show(current);
  showOutbox();
  // Answers left waiting by an earlier visit (a closed tab, a crash) are sent first.
  if (outbox.length) flush(); else refill();
})();
