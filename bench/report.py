"""The benchmark's table: median and range of each figure, and the ratios."""

import statistics

MIB = 1024 * 1024


def summary(values):
    """Return (median, minimum, maximum) of a list of numbers."""
    return statistics.median(values), min(values), max(values)


def format_seconds(value):
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s"


def format_mib(value):
    return f"{value / MIB:.1f} MiB"


def format_count(value):
    return f"{value:g}"


def cell(values, formatter):
    """Format the median with the range in brackets, or one value alone."""
    if not values:
        return "n/a"
    median, low, high = summary(values)
    if low == high:
        return formatter(median)
    return f"{formatter(median)} ({formatter(low)} to {formatter(high)})"


def ratio(numerator, denominator):
    if not numerator or not denominator:
        return "n/a"
    bottom = statistics.median(denominator)
    if bottom == 0:
        return "n/a"
    return f"{statistics.median(numerator) / bottom:.2f}x"


def rows(functions, deploys):
    """Return the table's rows: a label, the Rust or deployer figure, the
    Python or AWS CLI figure, and the ratio of their medians."""
    rust, python = functions["rust"], functions["python"]
    table = [("**Rotation function**", "**Rust (provided.al2023)**", "**Python (boto3, psycopg)**",
              "**Python / Rust**")]
    for label, attribute, formatter in (
        ("cold start: first invocation", "cold_start", format_seconds),
        ("warm invocation", "warm", format_seconds),
        ("four-step rotation: wall time", "rotation_wall", format_seconds),
        ("four-step rotation: function CPU time", "rotation_cpu", format_seconds),
        ("peak RSS of the function process", "peak_rss", format_mib),
    ):
        rust_values, python_values = getattr(rust, attribute), getattr(python, attribute)
        table.append((label, cell(rust_values, formatter), cell(python_values, formatter),
                      ratio(python_values, rust_values)))
    table.append(("zip size", format_mib(rust.zip_bytes), format_mib(python.zip_bytes),
                  ratio([python.zip_bytes], [rust.zip_bytes])))

    table.append(("**Deploy**", "**deployer**", "**aws cloudformation deploy**", "**AWS CLI / deployer**"))
    for label, attribute, cli_attribute in (
        ("up from nothing", "up_from_nothing", None),
        ("up with nothing changed", "up_unchanged", "cli_unchanged"),
        ("down", "down", None),
    ):
        ours = getattr(deploys, attribute)
        theirs = getattr(deploys, cli_attribute) if cli_attribute else []
        for suffix, measure, formatter in (
            ("wall time", lambda timed: timed.seconds, format_seconds),
            ("AWS API calls", lambda timed: timed.call_count, format_count),
        ):
            our_values = [measure(timed) for timed in ours]
            their_values = [measure(timed) for timed in theirs]
            table.append((f"{label}: {suffix}", cell(our_values, formatter),
                          cell(their_values, formatter) if theirs else "n/a",
                          ratio(their_values, our_values) if theirs else "n/a"))
    table.append(("cargo build of the unchanged rotator (up skips it)",
                  cell(deploys.noop_build_seconds, format_seconds), "n/a", "n/a"))
    table.append(("zipping and hashing the rotator (up skips it when unchanged)",
                  cell(deploys.packaging_seconds, format_seconds), "n/a", "n/a"))
    return table


def markdown_table(table):
    """Render rows as a Markdown table whose first row is the header."""
    header = ("figure", "Rust rotator / deployer", "Python rotator / AWS CLI", "ratio")
    widths = [max(len(str(row[index])) for row in [header, *table]) for index in range(4)]
    lines = []
    for position, row in enumerate([header, *table]):
        lines.append("| " + " | ".join(str(text).ljust(width) for text, width in zip(row, widths)) + " |")
        if position == 0:
            lines.append("| " + " | ".join("-" * width for width in widths) + " |")
    return "\n".join(lines)
