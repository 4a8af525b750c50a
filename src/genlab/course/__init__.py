"""``genlab course``: the textbook road from the normal distribution to diffusion models, one
step per command, each written as a page with its math, numbers, figures, the library calls
that made them and the tests that check them, in English or Japanese.

    from genlab.course import run_step
    result = run_step("2", lang="ja", out="course")   # -> course/02-maximum-likelihood/
    result.numbers["p_le_160"]
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from ..errors import GenlabError
from .page import LANGS, Page, document, pick


@dataclass(frozen=True)
class Step:
    key: str  # "1".."10", "A"
    slug: str
    module: str
    title: tuple[str, str]  # (en, ja)
    summary: tuple[str, str]
    takes_data: str = ""  # what --data may be, in words; "" when the step uses no data

    @property
    def folder(self) -> str:
        return (
            f"{self.key.zfill(2)}-{self.slug}" if self.key.isdigit() else f"{self.key}-{self.slug}"
        )

    def name(self, lang: str) -> str:
        return pick(lang, *self.title)


STEPS: tuple[Step, ...] = (
    Step(
        "1",
        "normal",
        "s01_normal",
        ("The normal distribution", "正規分布"),
        (
            "the density and its parameters; the central limit theorem by experiment",
            "確率密度とパラメータ、中心極限定理を実験で確かめる",
        ),
    ),
    Step(
        "2",
        "maximum-likelihood",
        "s02_mle",
        ("Maximum likelihood", "最尤推定"),
        (
            "heights fitted by maximum likelihood; new samples; P(x <= 160), P(x > 180)",
            "身長データを最尤推定で当てはめ、新しいデータを生成し、確率を計算する",
        ),
        "one column of numbers (heights)",
    ),
    Step(
        "3",
        "multivariate-normal",
        "s03_mvn",
        ("The multivariate normal", "多次元正規分布"),
        (
            "the 2-D normal as a surface and contours; its MLE on heights and weights",
            "2 次元正規分布の曲面と等高線、身長と体重への最尤推定",
        ),
        "two columns of numbers",
    ),
    Step(
        "4",
        "mixture",
        "s04_mixture",
        ("Gaussian mixture models", "混合ガウスモデル"),
        (
            "sampling from a Gaussian mixture; the multimodal Old Faithful data",
            "混合ガウスモデルからのサンプリング、多峰性をもつ Old Faithful のデータ",
        ),
        "two columns of numbers",
    ),
    Step(
        "5",
        "em",
        "s05_em",
        ("The EM algorithm", "EM アルゴリズム"),
        (
            "KL divergence; EM on Old Faithful with its log-likelihood per iteration",
            "KL ダイバージェンス、Old Faithful への EM アルゴリズムと対数尤度の推移",
        ),
        "two columns of numbers",
    ),
    Step(
        "6",
        "neural-networks",
        "s06_neural",
        ("Neural networks", "ニューラルネットワーク"),
        (
            "tensors and gradient descent; linear regression; an MLP on a non-linear toy set",
            "テンソルと勾配降下法、線形回帰、非線形データへの MLP",
        ),
    ),
    Step(
        "7",
        "vae",
        "s07_vae",
        ("The VAE", "VAE（変分オートエンコーダ）"),
        (
            "the ELBO and the reparameterization trick; samples and reconstructions",
            "ELBO（変分下界）と変数変換トリック、生成画像と再構成",
        ),
        "images (digits, mnist:PATH, folder:PATH, npz:PATH)",
    ),
    Step(
        "8",
        "diffusion-theory",
        "s08_diffusion_theory",
        ("Diffusion models: theory", "拡散モデルの理論"),
        (
            "q(x_t | x_0) in closed form and q(x_{t-1} | x_t, x_0), checked numerically",
            "拡散過程 q(x_t | x_0) の閉じた式と事後分布 q(x_{t-1} | x_t, x_0) を数値で確かめる",
        ),
    ),
    Step(
        "9",
        "diffusion-implementation",
        "s09_diffusion_impl",
        ("Diffusion models: implementation", "拡散モデルの実装"),
        (
            "the U-Net and its sinusoidal time embedding; noising; DDPM training and sampling",
            "U-Net と正弦波位置エンコーディング、ノイズ付加、DDPM の学習とサンプリング",
        ),
        "images (digits, mnist:PATH, folder:PATH, npz:PATH)",
    ),
    Step(
        "10",
        "diffusion-applications",
        "s10_guidance",
        ("Diffusion models: applications", "拡散モデルの応用"),
        (
            "class conditioning, the score, classifier and classifier-free guidance, text-to-image",
            "条件付き拡散モデル、スコア、分類器ガイダンスと分類器なしガイダンス、テキストから画像",
        ),
    ),
    Step(
        "A",
        "hierarchical-vae",
        "sa_hvae",
        ("Appendix: the two-level hierarchical VAE", "付録：2 階層の階層型 VAE"),
        (
            "two latent levels, their ELBO and its two KL terms; samples",
            "2 つの潜在変数の階層、その ELBO と 2 つの KL 項、生成画像",
        ),
        "images (digits, mnist:PATH, folder:PATH, npz:PATH)",
    ),
)


@dataclass
class Options:
    """What a learner can change: their own data, a quicker run (fewer training steps and
    samples: the numbers are rougher), and the variants different texts use."""

    data: str | None = None
    quick: bool = False
    seed: int = 0
    cond_drop_per: str = "sample"  # condition dropout: "sample" or "batch" (step 10)
    t_base: int = 1  # time steps 1..T (1) or 0..T-1 (0) (steps 8 and 9)
    elbo_reduction: str = "sum"  # the VAE loss: "sum" (the ELBO) or "mean" (step 7)
    reverse_variance: str = "posterior"  # DDPM's reverse step: "posterior" or "beta" (step 9)


@dataclass
class Result:
    step: Step
    page: Path
    numbers: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    notebook: Path | None = None  # with notebook=True: <step folder>/<step folder>.ipynb


def step_of(key: str) -> Step:
    for step in STEPS:
        if step.key.lower() == str(key).lower():
            return step
    keys = ", ".join(s.key for s in STEPS)
    raise GenlabError(f"There is no course step '{key}'; the steps are {keys}.")


def _nav(step: Step, lang: str) -> str:
    i = STEPS.index(step)
    links = [f'<a href="../index.html">{pick(lang, "All steps", "目次")}</a>']
    if i > 0:
        prev = STEPS[i - 1]
        links.append(f'<a href="../{prev.folder}/index.html">&larr; {prev.name(lang)}</a>')
    if i + 1 < len(STEPS):
        nxt = STEPS[i + 1]
        links.append(f'<a href="../{nxt.folder}/index.html">{nxt.name(lang)} &rarr;</a>')
    return "".join(links)


def run_step(
    key: str,
    lang: str = "en",
    out: str | Path = "course",
    options: Options | None = None,
    notebook: bool = False,
) -> Result:
    """Run one step and write its page to ``out/<step folder>/index.html`` and, with
    ``notebook``, the same step as a Jupyter notebook beside it (``<step folder>.ipynb``,
    see :mod:`genlab.course.notebook`). The page is built in a scratch folder and moved in
    place at the end, so a step that fails leaves the previous page (or nothing) behind,
    never half a page."""
    step = step_of(key)
    options = options or Options()
    check(step, lang, options)
    if notebook:
        from .notebook import require

        require()
    out = _writable(out)
    scratch = Path(tempfile.mkdtemp(prefix=f".{step.folder}-", dir=out))
    try:
        page = Page(lang, scratch)
        start = time.perf_counter()
        import_module(f"{__name__}.{step.module}").run(page, options)
        seconds = time.perf_counter() - start
        if notebook:
            from .notebook import notebook as make_notebook
            from .notebook import write

            write(make_notebook(step, lang, options, page.record), scratch / f"{step.folder}.ipynb")
        page.say(
            f"This page took {seconds:.1f} s to compute on this machine"
            + (" (quick mode: fewer steps, rougher numbers)." if options.quick else "."),
            f"このページの計算時間：{seconds:.1f} 秒"
            + ("（quick モード：学習ステップを減らした概算）。" if options.quick else "。"),
        )
        title = f"{step.key}. {step.name(lang)}" if step.key.isdigit() else step.name(lang)
        body = document(lang, title, "".join(page.parts), _nav(step, lang))
        (scratch / "index.html").write_text(body)
        folder = out / step.folder
        shutil.rmtree(folder, ignore_errors=True)
        scratch.rename(folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    write_index(lang, out)
    nb = folder / f"{step.folder}.ipynb"
    return Result(step, folder / "index.html", page.numbers, seconds, nb if notebook else None)


def check(step: Step, lang: str, options: Options) -> None:
    """Refuse what the step cannot do, before any work."""
    if lang not in LANGS:
        raise GenlabError(f"--lang must be one of {', '.join(LANGS)}, got '{lang}'.")
    if options.data is not None and not step.takes_data:
        takers = ", ".join(s.key for s in STEPS if s.takes_data)
        raise GenlabError(f"Step {step.key} uses no data set; --data applies to steps {takers}.")
    if options.seed < 0:
        raise GenlabError(f"--seed must be 0 or more, got {options.seed}.")
    choices = {"cond_drop_per": ("sample", "batch"), "t_base": (0, 1),
               "elbo_reduction": ("sum", "mean"), "reverse_variance": ("posterior", "beta")}  # fmt: skip
    for name, allowed in choices.items():
        if getattr(options, name) not in allowed:
            raise GenlabError(f"{name} must be one of {allowed}, got {getattr(options, name)!r}.")


def _writable(out: str | Path) -> Path:
    if str(out).strip() == "":
        raise GenlabError("--out must name a folder.")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GenlabError(f"Cannot write the course to {out} ({e.strerror or e}).") from None
    if not out.is_dir() or not os.access(out, os.W_OK):
        raise GenlabError(f"Cannot write the course to {out}: not a writable folder.")
    return out


def write_index(lang: str, out: str | Path) -> Path:
    """The course's table of contents, linking every step whose page is in ``out``."""
    rows = []
    for step in STEPS:
        name = step.name(lang)
        if (Path(out) / step.folder / "index.html").is_file():
            name = f'<a href="{step.folder}/index.html">{name}</a>'
        notebook = f"{step.folder}/{step.folder}.ipynb"
        notebook = (
            f'<a href="{notebook}">{pick(lang, "notebook", "ノートブック")}</a>'
            if (Path(out) / notebook).is_file()
            else ""
        )
        rows.append(
            f"<tr><td>{step.key}</td><td>{name}</td><td>{pick(lang, *step.summary)}</td>"
            f"<td>{notebook}</td></tr>"
        )
    intro = pick(
        lang,
        "<p>The road from the normal distribution to diffusion models, one step per page. "
        "Each page is computed by <code>genlab course N</code> and shows the math, the "
        "numbers, the figures, the library calls that made them and the tests that check "
        "them. With <code>genlab course N --notebook</code> a step is also written as a "
        "Jupyter notebook that recomputes it (linked in the last column).</p>",
        "<p>正規分布から拡散モデルまでの道のりを、1 ステップ 1 ページでたどります。各ページは "
        "<code>genlab course N</code> で計算され、数式・数値・図・それを作ったライブラリの呼び出し、"
        "そしてそれらを検証するテストを示します。<code>genlab course N --notebook</code> とすると、"
        "各ステップを計算し直す Jupyter ノートブックも書き出します（最後の列にリンク）。</p>",
    )
    path = Path(out) / "index.html"
    title = pick(lang, "genlab course", "genlab コース")
    path.write_text(document(lang, title, f"{intro}<table>{''.join(rows)}</table>"))
    return path


def run_all(
    lang: str = "en",
    out: str | Path = "course",
    options: Options | None = None,
    progress=None,
    notebook: bool = False,
) -> list[Result]:
    """Every step, then the index: the whole course as one linked site."""
    if options is not None and options.data is not None:
        raise GenlabError("--data goes with one step (genlab course N --data ...), not --all.")
    results = []
    for step in STEPS:
        if progress:
            progress(step)
        results.append(run_step(step.key, lang, out, options, notebook))
    return results
