// Bulk actions on the Users list (issue 16, item 5): "select this page" ticks every row's
// box; the cards page's Print button. Without JavaScript each box is ticked by hand and the
// browser's own Print prints the cards.
(function () {
  "use strict";
  var page = document.getElementById("bulk-page");
  if (page) {
    page.addEventListener("change", function () {
      var boxes = document.querySelectorAll('input[type=checkbox][name=id][form="bulk-form"]');
      for (var i = 0; i < boxes.length; i++) { boxes[i].checked = page.checked; }
    });
  }
  var print = document.querySelector("[data-print]");
  if (print) {
    print.addEventListener("click", function () { window.print(); });
  }
})();
