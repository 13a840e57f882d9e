// The prompt filter form, keyboard-first: A accepts, digits toggle reasons, R (or Enter once a reason is
// chosen or a comment typed) rejects, Backspace goes back to change the last review. A key never changes
// a focused list: the lists give the focus back to the page once a choice is made.
(() => {
  const back = document.getElementById("back-link");
  const form = document.getElementById("review-form");
  if (!form) {
    document.addEventListener("keydown", event => { if (event.key === "Backspace" && back) back.click(); });
    return;
  }
  const category = document.getElementById("category");
  const subcategory = document.getElementById("subcategory");
  const comment = document.getElementById("comment");
  const hasReason = () => form.querySelector("input[name=reasons]:checked") !== null || comment.value.trim() !== "";
  const decide = decision => { document.getElementById("decision").value = decision; form.submit(); };

  function followCategory() {
    // Only the chosen category's subcategories are offered.
    for (const option of subcategory.options) {
      option.hidden = Boolean(option.dataset.parent) && option.dataset.parent !== category.value;
    }
    if (subcategory.selectedOptions[0] && subcategory.selectedOptions[0].hidden) subcategory.value = "";
  }
  category.addEventListener("change", () => { followCategory(); category.blur(); });
  subcategory.addEventListener("change", () => subcategory.blur());
  followCategory();

  form.querySelectorAll("button[data-decision]").forEach(button =>
    button.addEventListener("click", event => { event.preventDefault(); decide(button.dataset.decision); }));
  comment.addEventListener("keydown", event => {
    if (event.key === "Enter") { event.preventDefault(); decide("reject"); }
    if (event.key === "Escape") comment.blur();
  });

  document.addEventListener("keydown", event => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.target === comment) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const box = form.querySelector(`input[data-key="${key}"]`);
    const actions = {
      a: () => decide("accept"),
      r: () => decide("reject"),
      Enter: () => { if (hasReason()) decide("reject"); },
      Backspace: () => { if (back) back.click(); },
    };
    if (!box && !actions[key]) return;
    event.preventDefault();  // the key is a shortcut: it must not also move a focused list or box
    if (box) box.checked = !box.checked; else actions[key]();
  });
})();
