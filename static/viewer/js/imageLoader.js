// Server-rendered images and tiles for the viewports: their URLs, a bounded cache of
// what was asked for and what has loaded, and the fetching ahead of neighbouring slices.

import { renderedUrl, tileUrl } from "./api.js";

const PREFETCH = 10; // slices ahead and behind
const CACHE_LIMIT = 400; // decoded images kept

// Why the index says a stack entry ({ instance, frame }) does not decode, else undefined.
export function undecodableReason({ instance, frame }) {
  return instance.undecodable?.[String(frame)];
}

// The rendered URL of a stack entry at ``window`` for a canvas of ``canvas`` device
// pixels turned by ``rotation`` quarter turns: large images come at the canvas's size,
// small ones at their own.
export function frameUrl({ instance, frame }, { window, canvas, rotation }, options = {}) {
  const longest = Math.max(instance.columns || 0, instance.rows || 0);
  // Turned a quarter, the image's columns run down the canvas.
  const box = rotation % 2 ? { width: canvas.height, height: canvas.width } : canvas;
  const viewport = longest > Math.max(box.width, box.height) ? box : undefined;
  return renderedUrl(instance, frame, { window, viewport, ...options });
}

// The cheap render shown while the window is dragged: JPEG at quality 70, half the
// canvas's size.
export function draggingUrl({ instance, frame }, { window, canvas }) {
  return renderedUrl(instance, frame, {
    window,
    accept: "image/jpeg",
    quality: 70,
    viewport: { width: Math.ceil(canvas.width / 2), height: Math.ceil(canvas.height / 2) },
  });
}

export class ImageLoader {
  constructor() {
    this.images = new Map(); // url -> Promise<HTMLImageElement>
    this.ready = new Map(); // url -> HTMLImageElement, once loaded
  }

  // The image at ``url``, from the cache or fetched; a failed load leaves the cache.
  load(url) {
    let promise = this.images.get(url);
    if (!promise) {
      promise = new Promise((resolve, reject) => {
        const image = new Image();
        image.decoding = "async";
        image.onload = () => {
          this.ready.set(url, image);
          if (this.ready.size > CACHE_LIMIT) this.ready.delete(this.ready.keys().next().value);
          resolve(image);
        };
        image.onerror = () => reject(new Error(url));
        image.src = url;
      });
      promise.catch(() => this.images.delete(url));
      this.images.set(url, promise);
      if (this.images.size > CACHE_LIMIT) this.images.delete(this.images.keys().next().value);
    }
    return promise;
  }

  // One tile of the pyramid if it has loaded; else null, having asked for it, with
  // ``onload`` called once it arrives.
  tile({ instance, frame }, level, column, row, window, onload) {
    const url = tileUrl(instance, frame, level, column, row, window);
    const tile = this.ready.get(url);
    if (tile) return tile;
    this.load(url).then(onload, () => {});
    return null;
  }

  // The slices either side of ``slice`` (nearest first), at the URLs ``urlFor`` gives
  // them; frames the index knows do not decode are not asked for.
  prefetch(stack, slice, urlFor) {
    for (let step = 1; step <= PREFETCH; step += 1) {
      for (const index of [slice + step, slice - step]) {
        const entry = stack[index];
        if (entry && !undecodableReason(entry)) this.load(urlFor(entry)).catch(() => {});
      }
    }
  }
}
