// Review by keyboard: j/k move, a approves, r rejects (asks why), l listens. No libraries.
(function () {
  "use strict";
  var cards = Array.prototype.slice.call(document.querySelectorAll("li.story"));
  var index = 0;
  function select(next) {
    if (!cards.length) { return; }
    cards[index].classList.remove("current");
    index = Math.max(0, Math.min(cards.length - 1, next));
    cards[index].classList.add("current");
    cards[index].scrollIntoView({ block: "nearest" });
  }
  select(0);
  document.addEventListener("keydown", function (event) {
    if (!cards.length || event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var card = cards[index];
    if (event.key === "j") { select(index + 1); }
    else if (event.key === "k") { select(index - 1); }
    else if (event.key === "a") { card.querySelector("form.approve button").click(); }
    else if (event.key === "r") {
      var reason = window.prompt("Why reject this story?");
      if (reason) {
        var form = card.querySelector("form.reject");
        form.querySelector("input[name=reason]").value = reason;
        form.querySelector("button").click();
      }
    } else if (event.key === "l") {
      card.querySelector("audio").play();
    } else { return; }
    event.preventDefault();
  });
}());
