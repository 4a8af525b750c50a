"""Step 6: tensors and gradient descent, linear regression, an MLP on a non-linear toy set."""

from __future__ import annotations

import numpy as np

from ..viz.plots import subplots


def rosenbrock_descent(iters=10_000, lr=0.001):
    """Gradient descent on the Rosenbrock function from (0, 2); its minimum is at (1, 1).
    PyTorch's autograd computes the gradient."""
    import torch

    x = torch.tensor([0.0, 2.0], requires_grad=True)
    path = [x.detach().clone()]
    for _ in range(iters):
        y = 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2
        y.backward()
        with torch.no_grad():
            x -= lr * x.grad
        x.grad.zero_()
        path.append(x.detach().clone())
    return torch.stack(path).numpy()


def linear_regression(n=100, iters=100, lr=0.1, seed=0):
    """y = 5 + 2 x + noise, fitted by gradient descent on the mean squared error."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, generator=g)
    y = 5 + 2 * x + torch.rand(n, 1, generator=g)
    w = torch.zeros(1, 1, requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    for _ in range(iters):
        loss = ((x @ w + b - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
            b -= lr * b.grad
        w.grad.zero_()
        b.grad.zero_()
    return x.numpy(), y.numpy(), float(w.item()), float(b.item()), float(loss.item())


def fit_mlp(n=100, iters=10_000, lr=0.2, seed=0):
    """A two-layer MLP (10 sigmoid units) fitted to y = sin(2 pi x) + noise by SGD."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    x = torch.rand(n, 1)
    y = torch.sin(2 * torch.pi * x) + torch.rand(n, 1)
    model = nn.Sequential(nn.Linear(1, 10), nn.Sigmoid(), nn.Linear(10, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(iters):
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return x.numpy(), y.numpy(), model, losses


def oracle(numbers, options):
    """Gradient descent run long enough reaches numpy's least squares; the MLP's loss
    falls."""
    from genlab.course.common import compare

    x, y, w, b, _ = linear_regression(iters=2000, seed=options.seed)
    design = np.hstack([x, np.ones_like(x)])
    (w_ls, b_ls), *_ = np.linalg.lstsq(design, y[:, 0], rcond=None)
    return [
        compare("w after 2,000 steps against np.linalg.lstsq", w, w_ls, 1e-3),
        compare("b after 2,000 steps against np.linalg.lstsq", b, b_ls, 1e-3),
        compare("page's least-squares w against np.linalg.lstsq", numbers["w_least_squares"],
                w_ls, 1e-6),
        compare("MLP: final loss below 0.8 x the first (shortfall against 0)",
                max(numbers["mlp_final_loss"] - 0.8 * numbers["mlp_first_loss"], 0.0), 0.0, 0.0),
    ]  # fmt: skip


def run(page, options) -> None:
    import torch

    page.say(
        "A neural network is a function with many parameters, fitted by gradient descent: "
        "PyTorch's tensors record the operations done on them, and backward() computes the "
        "gradient of a scalar with respect to every tensor that asked for one.",
        "ニューラルネットワークは多数のパラメータをもつ関数で、勾配降下法で学習します。PyTorch "
        "のテンソルは自身に行われた演算を記録し、backward() によってスカラーの勾配を、勾配を"
        "必要とするすべてのテンソルについて計算します。",
    )
    page.math(r"\theta\leftarrow\theta-\eta\,\nabla_\theta L(\theta)")
    page.heading("Gradient descent on the Rosenbrock function", "Rosenbrock 関数での勾配降下法")
    page.math(r"y=100\,(x_1-x_0^2)^2+(1-x_0)^2")
    path = rosenbrock_descent(2_000 if options.quick else 10_000)
    gx, gy = np.meshgrid(np.linspace(-2, 2, 200), np.linspace(-1, 3, 200))
    fig, ax = subplots(figsize=(5.5, 4.5))
    ax.contour(gx, gy, 100 * (gy - gx**2) ** 2 + (1 - gx) ** 2, levels=np.logspace(-1, 3, 12))
    ax.plot(path[:, 0], path[:, 1], "r.-", ms=2, lw=0.8)
    ax.plot(1, 1, "k*", ms=12)
    ax.set(xlabel="x0", ylabel="x1", title=f"{len(path) - 1} steps from (0, 2)")
    fig.tight_layout()
    page.figure(
        fig,
        "rosenbrock.png",
        "The path of gradient descent; the star is the minimum",
        "勾配降下法の軌跡（星印が最小値）",
    )

    page.heading("Linear regression", "線形回帰")
    page.math(r"L(w,b)=\frac{1}{N}\sum_{n=1}^{N}\left(w x^{(n)}+b-y^{(n)}\right)^2")
    x, y, w, b, _ = linear_regression(seed=options.seed)
    design = np.hstack([x, np.ones_like(x)])
    (w_ls, b_ls), *_ = np.linalg.lstsq(design, y[:, 0], rcond=None)
    fig, ax = subplots(figsize=(5, 3.8))
    ax.scatter(x[:, 0], y[:, 0], s=8)
    ax.plot([0, 1], [b, w + b], "r", label="gradient descent")
    ax.legend()
    fig.tight_layout()
    page.figure(fig, "linear.png", "The data and the fitted line", "データと推定した直線")
    page.say(
        "After 100 steps, gradient descent is close to, but not yet at, the least-squares "
        "solution that linear algebra gives in one step:",
        "100 ステップ後の勾配降下法の解は、線形代数で一度に求まる最小二乗解に近いものの、"
        "まだ一致はしていません。",
    )
    rows = [
        (
            "descent_end_x0",
            "Rosenbrock: x0 at the end",
            "Rosenbrock：最後の x0",
            float(path[-1, 0]),
        ),
        (
            "descent_end_x1",
            "Rosenbrock: x1 at the end",
            "Rosenbrock：最後の x1",
            float(path[-1, 1]),
        ),
        ("w_descent", "w by gradient descent", "勾配降下法による w", w),
        ("b_descent", "b by gradient descent", "勾配降下法による b", b),
        ("w_least_squares", "w by least squares", "最小二乗法による w", float(w_ls)),
        ("b_least_squares", "b by least squares", "最小二乗法による b", float(b_ls)),
    ]

    page.heading("A neural network on non-linear data", "非線形データへのニューラルネットワーク")
    page.math(r"\hat y=W_2\,\sigma(W_1x+\mathbf{b}_1)+b_2,\qquad\sigma(a)=\frac{1}{1+e^{-a}}")
    x, y, model, losses = fit_mlp(iters=3_000 if options.quick else 10_000, seed=options.seed)
    grid = np.linspace(0, 1, 200)[:, None]
    with torch.no_grad():
        pred = model(torch.as_tensor(grid, dtype=torch.float32)).numpy()
    fig, axes = subplots(1, 2, figsize=(10, 3.8))
    axes[0].scatter(x[:, 0], y[:, 0], s=8)
    axes[0].plot(grid[:, 0], pred[:, 0], "r")
    axes[1].plot(losses)
    axes[1].set(xlabel="iteration", ylabel="mean squared error", yscale="log")
    fig.tight_layout()
    page.figure(
        fig,
        "mlp.png",
        "The MLP's fit (left) and its loss per iteration (right)",
        "MLP の当てはめ（左）と反復ごとの損失（右）",
    )
    rows += [
        ("mlp_first_loss", "MLP: loss at the start", "MLP：最初の損失", float(losses[0])),
        ("mlp_final_loss", "MLP: loss at the end", "MLP：最後の損失", float(losses[-1])),
    ]
    page.table(rows)
    page.code(
        rosenbrock_descent,
        linear_regression,
        fit_mlp,
        call="path = rosenbrock_descent()\nx, y, w, b, _ = linear_regression()\n"
        "x, y, model, losses = fit_mlp()",
    )
    page.tests("tests/test_course.py::test_step6_descent_and_regression")
