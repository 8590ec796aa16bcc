// Small progressive enhancements; every page works without them.
// A confirm dialog for forms (or submit buttons) that carry data-confirm.
document.addEventListener("submit", function (e) {
  var form = e.target;
  var button = e.submitter;
  var msg = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) { e.preventDefault(); }
});

// The add/edit user form: grade is for students, position for adults. The field that does
// not apply to the chosen role is hidden and disabled, so it is not sent either (the server
// holds the same rule); with no role chosen yet, both show.
(function () {
  var role = document.getElementById("f-role");
  var grade = document.getElementById("f-grade");
  var position = document.getElementById("f-position");
  if (!role || !grade || !position) { return; }
  function show(input, on) {
    input.closest(".field").hidden = !on;
    input.disabled = !on;
  }
  function apply() {
    show(grade, role.value === "" || role.value === "Student");
    show(position, role.value !== "Student");
  }
  role.addEventListener("change", apply);
  apply();
})();

// Live progress: any element with data-status-url polls it and updates its
// [data-field] children; when the run has finished, the page reloads.
(function () {
  var live = document.querySelectorAll("[data-status-url]");
  if (!live.length) { return; }
  function poll() {
    var pending = 0;
    live.forEach(function (el) {
      var url = el.getAttribute("data-status-url");
      if (!url) { return; }
      pending++;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (!s) { return; }
          if (s.finished) { window.location.reload(); return; }
          el.querySelectorAll("[data-field=bar]").forEach(function (b) { b.value = s.progress.percent; });
          el.querySelectorAll("[data-field=rows]").forEach(function (t) {
            t.textContent = s.progress.done + " / " + s.progress.total;
          });
          el.querySelectorAll("[data-field=status]").forEach(function (t) { t.textContent = s.status_label; });
          if (el.id === "run-status") { el.textContent = s.status_label; }
        })
        .catch(function () {});
    });
    if (pending) { setTimeout(poll, 2000); }
  }
  setTimeout(poll, 1000);
})();

// Drag and drop onto the upload form's file input.
(function () {
  var zone = document.getElementById("dropzone");
  var input = document.getElementById("file");
  var name = document.getElementById("dz-name");
  if (!zone || !input) { return; }
  function show() { if (name) { name.textContent = input.files.length ? input.files[0].name : ""; } }
  input.addEventListener("change", show);
  ["dragenter", "dragover"].forEach(function (t) {
    zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (t) {
    zone.addEventListener(t, function () { zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) { input.files = e.dataTransfer.files; show(); }
  });
})();
