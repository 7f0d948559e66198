// The review workbench's keyboard: 1-9 choose a label, Enter submits it, S releases the task,
// E escalates it, C writes a comment (Escape leaves the comment box). The lease counts down.
(function () {
  "use strict";
  const form = document.getElementById("answer");
  if (!form) { return; }
  const buttons = Array.from(form.querySelectorAll("button.label"));
  const chosen = document.getElementById("chosen");
  const comment = document.getElementById("comment");
  const action = document.getElementById("action");
  const status = document.getElementById("choice");

  function choose(i) {
    if (i < 0 || i >= buttons.length) { return; }
    buttons.forEach((b, j) => b.setAttribute("aria-pressed", String(i === j)));
    chosen.value = buttons[i].value;
    buttons[i].focus();
    status.textContent = "Chosen: " + buttons[i].value + " — Enter saves it.";
  }
  function send(what) {
    action.value = what;
    if (what === "submit" && !chosen.value) {
      status.textContent = "Choose a label first (keys 1-" + buttons.length + ").";
      return;
    }
    form.submit();
  }
  buttons.forEach((b, i) => b.addEventListener("click", (ev) => {
    ev.preventDefault(); choose(i); send("submit");
  }));
  document.getElementById("release").addEventListener("click", (ev) => {
    ev.preventDefault(); send("release");
  });
  const escalate = document.getElementById("escalate");  // the expert view has none
  if (escalate) {
    escalate.addEventListener("click", (ev) => { ev.preventDefault(); send("escalate"); });
  }
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    if (ev.target === comment) {
      if (ev.key === "Escape") { comment.blur(); ev.preventDefault(); }
      else if (ev.key === "Enter") { ev.preventDefault(); send("submit"); }
      return;
    }
    const key = ev.key.toLowerCase();
    if (/^[1-9]$/.test(key)) { choose(Number(key) - 1); ev.preventDefault(); }
    else if (key === "enter") { send("submit"); ev.preventDefault(); }
    else if (key === "s") { send("release"); ev.preventDefault(); }
    else if (key === "e" && escalate) { send("escalate"); ev.preventDefault(); }
    else if (key === "c") { comment.focus(); ev.preventDefault(); }
  });

  const lease = document.getElementById("lease");
  if (lease) {
    const until = Date.parse(lease.dataset.expires);
    const tick = () => {
      const left = Math.round((until - Date.now()) / 1000);
      if (left <= 0) {
        lease.textContent = "lease ran out — reload to take the next task";
        lease.className = "error";
        return;
      }
      lease.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") + " left";
      setTimeout(tick, 1000);
    };
    tick();
  }
})();
