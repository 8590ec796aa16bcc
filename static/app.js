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
            t.textContent = s.progress.text;
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

// Drag and drop onto the upload form's file input: one file, or the several files of one
// SDS / OneRoster set (the server puts them into one set, or says why not).
(function () {
  var zone = document.getElementById("dropzone");
  var input = document.getElementById("file");
  var name = document.getElementById("dz-name");
  if (!zone || !input) { return; }
  function show() {
    if (!name) { return; }
    var names = Array.prototype.map.call(input.files, function (f) { return f.name; });
    name.textContent = names.length > 1 ? names.length + " files: " + names.join(", ") : (names[0] || "");
  }
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

// The upload form's scope: a file carrying our Error column is a fixed error file (a
// patch); one with user_guid on every row read is the master CSV sent back (the whole
// district). The choice is preselected from the chosen file's first lines, with a note (the
// server too makes an error file a patch when nothing is chosen by hand).
(function () {
  var input = document.getElementById("file");
  var note = document.getElementById("scope-note");
  var touched = document.getElementById("scope-touched");
  if (!input || !note || !touched || !window.FileReader) { return; }
  var radios = document.querySelectorAll("input[name=scope]");
  radios.forEach(function (r) {
    r.addEventListener("change", function () { touched.value = "1"; });
  });
  function pick(value, text) {
    radios.forEach(function (r) { r.checked = r.value === value; });
    note.textContent = text;
    note.hidden = !text;
  }
  function fold(h) { return h.replace(/^\uFEFF/, "").replace(/[\s_.\-"]/g, "").toLowerCase(); }
  function check() {
    // Several files are one set, run as a sync: the scope is not theirs to choose.
    if (input.files.length !== 1 || touched.value === "1") { return; }
    var reader = new FileReader();
    reader.onload = function () {
      var lines = String(reader.result).split(/\r?\n/).filter(function (l) { return l.trim() !== ""; });
      if (!lines.length) { return; }
      var delim = lines[0].indexOf(";") > lines[0].indexOf(",") ? ";" : (lines[0].indexOf("\t") >= 0 && lines[0].indexOf(",") < 0 ? "\t" : ",");
      var head = lines[0].split(delim).map(fold);
      var guid = head.indexOf("userguid");
      if (head.indexOf("error") >= 0) {
        pick("patch", "This looks like a fixed error file (it has an Error column): it will add and update its users and archive nobody; the users it creates go to the file it came from.");
        return;
      }
      var rows = lines.slice(1);
      var everyRow = guid >= 0 && rows.length > 0 && rows.every(function (l) {
        var cells = l.split(delim);
        return (cells[guid] || "").replace(/"/g, "").trim() !== "";
      });
      if (everyRow) {
        pick("district", "This looks like the master CSV sent back (user_guid on every row): the whole district is proposed, so users whose rows you removed would be archived. Such a run waits for your review, listing who would be archived, before anything happens.");
      } else {
        pick("source", "");
      }
    };
    // The first 4 MiB are enough to tell (the server checks the whole file).
    reader.readAsText(input.files[0].slice(0, 4 * 1024 * 1024));
  }
  input.addEventListener("change", check);
  var zone = document.getElementById("dropzone");
  if (zone) { zone.addEventListener("drop", function () { setTimeout(check, 0); }); }
})();

// The add-connection form: each field says the kinds it is for (data-kinds); the others
// are hidden and disabled (so not sent) while another kind is chosen. Without script every
// field shows and the server ignores those the kind does not use.
(function () {
  var kind = document.getElementById("conn-kind");
  if (!kind || !kind.form) { return; }
  var fields = kind.form.querySelectorAll("[data-kinds]");
  function apply() {
    fields.forEach(function (label) {
      var on = label.getAttribute("data-kinds").split(" ").indexOf(kind.value) >= 0;
      label.hidden = !on;
      label.querySelectorAll("input, select").forEach(function (i) { i.disabled = !on; });
    });
  }
  kind.addEventListener("change", apply);
  apply();
})();

// The mapper (issue 16, item 9): once a choice changes, the preview of the first rows no
// longer shows what would run; say so until the admin previews again.
(function () {
  var stale = document.getElementById("preview-stale");
  var button = document.getElementById("preview-button");
  if (!stale || !button || !button.form) { return; }
  button.form.querySelectorAll("select").forEach(function (s) {
    s.addEventListener("change", function () {
      stale.hidden = false;
      var table = document.querySelector("table.preview-rows");
      if (table) { table.classList.add("stale"); }
    });
  });
})();
