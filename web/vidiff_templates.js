// The template browser's cards of this pack say what each template does and what it needs.
//
// ComfyUI lists a custom node's templates by file name only, and the frontend (1.32.9) shows the name as the card's
// title and again, with "_" as spaces, as its description. This puts in each card's description what the template
// does (GET /vidiff/templates, vidiff_model/remote/templates.py), the whole line with what it needs as the
// description's tooltip (the card's picture, workflows/vidiff_<name>.jpg, shows the title and what it needs: green
// "Runs on CPU" or amber with the downloads). Only the pack's own cards are touched; the pack works without this.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const CARD = "[data-testid^='template-workflow-vidiff_']";
let templates = null;

function describe(card) {
  const name = card.dataset.testid.slice("template-workflow-".length);
  const info = templates?.[name];
  if (!info || card.dataset.vidiffDescribed === name) return;
  card.dataset.vidiffDescribed = name;
  const text = card.querySelector("p");
  if (text) {
    text.textContent = info.does;
    text.title = `${info.does}; ${info.needs}.`;
  }
}

function describeAll() {
  for (const card of document.querySelectorAll(CARD)) describe(card);
}

app.registerExtension({
  name: "VIDiff.templateCards",
  async setup() {
    try {
      const response = await api.fetchApi("/vidiff/templates");
      if (!response.ok) return;
      templates = await response.json();
    } catch (error) {
      console.warn("VIDiff: no template descriptions", error);
      return;
    }
    let queued = false;
    new MutationObserver(() => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => { queued = false; describeAll(); });
    }).observe(document.body, { childList: true, subtree: true });
  },
});
