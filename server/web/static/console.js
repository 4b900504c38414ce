// The console's one script (no build step, nothing fetched from elsewhere). Every page
// works without it; it only redraws a running job's progress in place until it ends.
"use strict";

function follow(part) {
  setTimeout(async () => {
    const response = await fetch(part.dataset.source, { credentials: "same-origin" });
    if (!response.ok) return;  // signed out or gone: the page stays as it is
    part.innerHTML = await response.text();
    if (part.querySelector("[data-running]")) follow(part);
  }, 1500);
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live][data-source]").forEach(follow);
});
