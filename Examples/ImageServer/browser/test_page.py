"""The web page in a real browser: headless Chromium driven by Selenium against a running ImageServer.

Usage: python3 test_page.py BASE_URL SCREENSHOT_PATH
The server must run with --slots 1 and a step time that lets a person watch (e.g. --step-ms 100).
Every wait has a generous bound: a failure is a missing behaviour, never a slow machine.
"""
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BASE, SCREENSHOT = sys.argv[1], sys.argv[2]
BOUND = 120  # seconds, a bound on waiting, not a measurement


def debug(action):
    """Holds (`hold`) or lets go (`release`) the simulated GPU between steps, so that no step of the test
    races the jobs."""
    urllib.request.urlopen(urllib.request.Request(f"{BASE}/debug/{action}", method="POST")).read()


def make_driver():
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,900"):
        options.add_argument(argument)
    for binary in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        try:
            open(binary).close()
            options.binary_location = binary
            break
        except OSError:
            pass
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def cards(driver):
    """The job cards, oldest first, as (id, state, place text, progress value, whether the result image
    loaded, the preview's address, the chat text)."""
    script = """
      return [...document.querySelectorAll('.job')].reverse().map(card => {
        const result = card.querySelector('img.result'), preview = card.querySelector('img.preview');
        const text = card.querySelector('.text');
        return [card.dataset.id, card.dataset.state, card.querySelector('.place').textContent,
          Number(card.querySelector('progress').value),
          !!result && result.complete && result.naturalWidth > 0,
          preview ? preview.getAttribute('src') || '' : '', text ? text.textContent : ''];
      });
    """
    return driver.execute_script(script)


def main():
    driver = make_driver()
    seen = {}  # card index -> every place text it showed
    try:
        driver.get(BASE + "/")
        driver.execute_script("localStorage.clear()")
        driver.get(BASE + "/")
        # The jobs wait before their first step until the places have been seen.
        debug("hold")
        # The second job is longer, so that the third is still waiting when the test holds the GPU again.
        for text, count in (("a red fox", "15"), ("a blue whale", "40"), ("a green forest", "15")):
            submit_job(driver, text, count)

        def watch(condition):
            def check(d):
                current = cards(d)
                for index, card in enumerate(current):
                    texts = seen.setdefault(index, [])
                    if not texts or texts[-1] != card[2]:
                        texts.append(card[2])
                return condition(current)
            WebDriverWait(driver, BOUND, poll_frequency=0.05).until(check)

        # The first runs, the second is 1st in line, the third 2nd.
        watch(lambda c: c[2][2].startswith("2nd in line") and c[1][2].startswith("1st in line"))
        debug("release")
        # The running job's progress bar moves.
        watch(lambda c: 0 < c[0][3] < 1)
        first_progress, first_preview = cards(driver)[0][3], cards(driver)[0][5]
        watch(lambda c: c[0][3] > first_progress or c[0][1] == "finished")
        # The preview travels through the queue's stream: a newer step's picture replaced the first one.
        assert "step=" in first_preview, first_preview
        watch(lambda c: c[0][5] != first_preview and "step=" in c[0][5])
        # When the first finishes, the third moves up to 1st in line; cancel it from the page then.
        # The second job is held while the third is cancelled, so that it cannot finish first.
        watch(lambda c: c[2][2].startswith("1st in line"))
        debug("hold")
        driver.find_elements(By.CSS_SELECTOR, ".job")[0].find_element(By.CSS_SELECTOR, ".cancel").click()
        watch(lambda c: c[2][2] == "cancelled")
        debug("release")
        # Two images load: the first and the second job's.
        watch(lambda c: c[0][4] and c[1][4])
        assert not cards(driver)[2][4], "the cancelled job has no image"

        # A chat call in the same GPU group: its text grows on the page as the tokens come. The GPU is held
        # once some text shows, so the test sees a partial text before the whole one.
        chat = driver.find_element(By.CSS_SELECTOR, "#chat input[name=prompt]")
        chat.clear()
        chat.send_keys("tell me of foxes")
        tokens = driver.find_element(By.CSS_SELECTOR, "#chat input[name=tokens]")
        tokens.clear()
        tokens.send_keys("200")
        driver.find_element(By.CSS_SELECTOR, "#chat button").click()
        watch(lambda c: len(c) == 4 and len(c[3][6]) > 0)
        debug("hold")
        watch(lambda c: c[3][1] == "running")
        partial = cards(driver)[3][6]
        debug("release")
        watch(lambda c: c[3][1] == "finished" and c[3][2].startswith("done"))
        whole = cards(driver)[3][6]
        assert whole.startswith(partial) and len(whole) > len(partial), (partial, whole)
        assert whole.startswith('About "tell me of foxes":'), whole
        driver.save_screenshot(SCREENSHOT)

        # Reload: the page finds its jobs again by id, and the chat its whole text.
        driver.get(BASE + "/")
        WebDriverWait(driver, BOUND).until(lambda d: len(cards(d)) == 4 and all(c[1] == "finished" for c in cards(d)))
        WebDriverWait(driver, BOUND).until(lambda d: cards(d)[3][6] == whole)
        states = [card[2] for card in cards(driver)]
        assert states[2] == "cancelled" and states[0].startswith("done") and states[1].startswith("done"), states
        print("seen:", {index: texts for index, texts in seen.items()})
        print(f"chat: {len(partial)} characters while running, then {len(whole)}")
        print("browser test passed: 3 jobs, places changed as jobs finished, previews changed, one cancelled, "
              "two images, a chat whose text grew, all found again after a reload")
        two_sessions(driver)
    finally:
        driver.quit()


def submit_job(driver, text, count):
    prompt = driver.find_element(By.NAME, "prompt")
    steps = driver.find_element(By.NAME, "steps")
    prompt.clear()
    prompt.send_keys(text)
    steps.clear()
    steps.send_keys(count)
    before = len(cards(driver))
    driver.find_element(By.CSS_SELECTOR, "#submit button").click()
    WebDriverWait(driver, BOUND).until(lambda d: len(cards(d)) == before + 1)


def two_sessions(first):
    """A second browser (its own cookies and storage) next to the first: each sees only its own jobs, and the
    second one's job runs right after the first one's current job although the first queued several."""
    second = make_driver()
    try:
        first.get(BASE + "/")
        first.execute_script("localStorage.clear()")
        first.get(BASE + "/")
        second.get(BASE + "/")
        debug("hold")
        for text in ("flood one", "flood two", "flood three"):
            submit_job(first, text, "10")
        # The first session's first job runs (held); its other two wait.
        WebDriverWait(first, BOUND).until(lambda d: cards(d)[0][1] == "running" and cards(d)[2][1] == "queued")
        submit_job(second, "just one", "10")
        WebDriverWait(second, BOUND).until(lambda d: cards(d)[0][2].startswith("1st in line"))
        assert len(cards(second)) == 1, "the second session sees its own job only"
        assert len(cards(first)) == 3, "the first session sees its own jobs only"
        ids_first = {card[0] for card in cards(first)}
        ids_second = {card[0] for card in cards(second)}
        assert not ids_first & ids_second
        debug("release")
        # The second session's job starts next; hold it there and look at the first session's line.
        WebDriverWait(second, BOUND, poll_frequency=0.05).until(lambda d: cards(d)[0][1] == "running")
        debug("hold")
        WebDriverWait(first, BOUND).until(
            lambda d: cards(d)[0][1] == "finished" and cards(d)[1][1] == "queued" and cards(d)[2][1] == "queued")
        # Neither page can reach the other's jobs, even by id.
        other = next(iter(ids_first))
        status = second.execute_script(
            "return fetch('/jobs/' + encodeURIComponent(arguments[0])).then(r => r.status)", other)
        assert status == 404, status
        for card in first.find_elements(By.CSS_SELECTOR, ".job .cancel"):
            card.click()
        debug("release")
        WebDriverWait(second, BOUND).until(lambda d: cards(d)[0][1] == "finished")
        WebDriverWait(first, BOUND).until(lambda d: all(card[1] == "finished" for card in cards(d)))
        print("two sessions passed: each saw only its own jobs; the second's job ran right after the first's "
              "current one, ahead of its two waiting jobs; a fetch of the other's id answered 404")
    finally:
        second.quit()


if __name__ == "__main__":
    main()
