// Sendhooks dashboard: a form's submit buttons are disabled while its
// request runs, so a double click sends one request (a retry queued once).
// The server refuses a second retry of the same webhook anyway; this only
// spares the user the refusal. Buttons come back when the page is shown
// again from the browser's history.
document.addEventListener("submit", function (event) {
	if (event.defaultPrevented) {
		return;
	}
	var form = event.target;
	if (form.dataset.submitting === "1") {
		event.preventDefault();
		return;
	}
	form.dataset.submitting = "1";
	form.querySelectorAll("button[type=submit]").forEach(function (b) {
		b.disabled = true;
		b.setAttribute("aria-busy", "true");
	});
});
window.addEventListener("pageshow", function () {
	document.querySelectorAll("form[data-submitting]").forEach(function (form) {
		delete form.dataset.submitting;
		form.querySelectorAll("button[aria-busy]").forEach(function (b) {
			b.disabled = false;
			b.removeAttribute("aria-busy");
		});
	});
});
