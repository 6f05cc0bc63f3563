#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Formats one `Double` with a C `printf` conversion (`"%.1f"`, `"%g"`), which rounds exactly as Python's
/// format specifications do: the renderings match AUTOMATIC1111's byte for byte.
func cFormat(_ format: StaticString, _ value: Double) -> String {
    withVaList([value]) { arguments in
        var buffer = [CChar](repeating: 0, count: 64)
        let written = format.withUTF8Buffer { formatBytes in
            formatBytes.withMemoryRebound(to: CChar.self) { formatChars in
                vsnprintf(&buffer, buffer.count, formatChars.baseAddress!, arguments)
            }
        }
        precondition(written >= 0 && written < buffer.count, "cFormat: value too long for its buffer")
        return String(decoding: buffer.prefix(Int(written)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Duration {
    /// The longest ETA or wait the lifecycle reports: about 31 years. Longer estimates (a progress of
    /// 1e-30 reported after a second) are clamped to it rather than overflowing `Duration`.
    static var etaLimit: Duration { .seconds(1_000_000_000) }

    /// `seconds` as a duration clamped to `0...etaLimit`; NaN counts as zero.
    static func clampedSeconds(_ seconds: Double) -> Duration {
        guard seconds.isFinite || seconds == .infinity, seconds > 0 else { return .zero }
        return seconds >= 1e9 ? etaLimit : .seconds(seconds)
    }

    /// Seconds as a `Double`.
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}

/// Escapes text for HTML the way Python's `html.escape` does (quotes included), scalar by scalar: a `<`
/// followed by a combining mark is one `Character` that is not `"<"`, but its `<` is still escaped.
func htmlEscaped(_ text: String) -> String {
    var escaped = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
        switch scalar {
        case "&": escaped.append(contentsOf: "&amp;".unicodeScalars)
        case "<": escaped.append(contentsOf: "&lt;".unicodeScalars)
        case ">": escaped.append(contentsOf: "&gt;".unicodeScalars)
        case "\"": escaped.append(contentsOf: "&quot;".unicodeScalars)
        case "'": escaped.append(contentsOf: "&#x27;".unicodeScalars)
        default: escaped.append(scalar)
        }
    }
    return String(escaped)
}
