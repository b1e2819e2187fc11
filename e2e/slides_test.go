package e2e

import (
	"context"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"mpim/docs/course/slides"
)

// TestCourseSlides renders every slide of both decks in headless Chromium
// at the projector's size, as the lab serves them (the handler the lab
// mounts at /slides/): both languages have the same slides, every slide's
// content fits its 1280x720 frame, every diagram has a size, and no image
// is missing.
func TestCourseSlides(t *testing.T) {
	bin := needChromium(t)
	srv := httptest.NewServer(slides.Handler("/slides/"))
	defer srv.Close()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.DisableGPU, chromedp.WindowSize(1280, 720), chromedp.UserDataDir(t.TempDir()))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &page{t: t, ctx: ctx, artifacts: t.TempDir()}
	counts := map[string]int{}
	for _, lang := range []string{"en", "zh"} {
		p.do(chromedp.EmulateViewport(1280, 720), chromedp.Navigate(srv.URL+"/slides/"+lang+".html"))
		var n int
		p.eval(`window.deck ? window.deck.count : 0`, &n)
		if n < 10 {
			t.Fatalf("%s deck: %d slides", lang, n)
		}
		counts[lang] = n
		for k := range n {
			var got struct {
				Shown, Fits bool
				Title       string
				SVGs, Empty int
				BadImages   int
			}
			p.eval(`(() => { deck.show(`+strconv.Itoa(k)+`); const s = document.querySelectorAll(".slide")[`+strconv.Itoa(k)+`];
				const svgs = [...s.querySelectorAll("svg")];
				return {Shown: s.classList.contains("on") && getComputedStyle(s).display !== "none",
					Fits: s.scrollHeight <= s.clientHeight + 2 && s.scrollWidth <= s.clientWidth + 2,
					Title: s.dataset.title || "", SVGs: svgs.length,
					Empty: svgs.filter((g) => { const r = g.getBoundingClientRect(); return r.width < 10 || r.height < 10; }).length,
					BadImages: [...s.querySelectorAll("img")].filter((i) => !i.complete || i.naturalWidth === 0).length}; })()`, &got)
			switch {
			case !got.Shown:
				t.Errorf("%s slide %d is not shown by deck.show", lang, k+1)
			case !got.Fits:
				t.Errorf("%s slide %d (%q): its content overflows the 1280x720 frame", lang, k+1, got.Title)
			case got.Title == "":
				t.Errorf("%s slide %d has no title", lang, k+1)
			case got.Empty > 0 || got.BadImages > 0:
				t.Errorf("%s slide %d (%q): %d diagrams without a size, %d missing images", lang, k+1, got.Title, got.Empty, got.BadImages)
			}
		}
		p.screenshot("slides-" + lang)
	}
	if counts["en"] != counts["zh"] {
		t.Errorf("the English deck has %d slides, the Chinese %d: the languages must have the same slides", counts["en"], counts["zh"])
	}
}
