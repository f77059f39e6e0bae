// Live status of an attempt: while #status has data-poll, fetch its fragment every 2 s.
(function () {
  var box = document.getElementById("status");
  if (!box || !box.dataset.poll) return;
  var url = box.dataset.statusUrl;
  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) {
        // the session ended: go where the server sends us (the sign-in form), once
        if (r.redirected) { window.location.assign(r.url); return Promise.reject("signed out"); }
        return r.ok ? r.text() : Promise.reject(r.status);
      })
      .then(function (html) {
        box.innerHTML = html;  // the server's escaped template, from our own origin
        var section = box.querySelector("[data-final]");
        if (section && section.dataset.final === "1") { delete box.dataset.poll; return; }
        setTimeout(poll, 2000);
      })
      .catch(function (why) { if (why !== "signed out") setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
