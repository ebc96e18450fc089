// The order page's Images section (templates/pacs_link/_order_images.html): a thumbnail that fails to
// load means the PACS did not answer (the server answers 503 then); the section says so once, and the
// broken picture is hidden rather than shown as a broken-image icon. The page itself never waited.
(() => {
  document.querySelectorAll("[data-pacs-images]").forEach((section) => {
    const notice = section.querySelector("[data-pacs-down]");
    const failed = (img) => {
      img.hidden = true;
      if (notice) notice.hidden = false;
    };
    section.querySelectorAll("img.pacs-thumb").forEach((img) => {
      // A thumbnail may have failed before this script ran (it is deferred).
      if (img.complete && img.naturalWidth === 0) {
        failed(img);
      } else {
        img.addEventListener("error", () => failed(img), { once: true });
      }
    });
  });
})();
