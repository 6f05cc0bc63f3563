/// Draws the simulated model's pictures: a smooth field of colour chosen by the prompt and seed, revealed
/// from noise as the steps go by (the live preview is the same picture at the current step).
public struct Painter: Sendable {
    public let prompt: String
    public let seed: UInt64

    public init(prompt: String, seed: UInt64) {
        self.prompt = prompt
        self.seed = seed
    }

    /// The picture after `step` of `steps`: noise at step 0, the final image at the last step.
    public func render(size: Int, step: Int, of steps: Int) -> [UInt8] {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325 ^ seed
        for byte in prompt.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        let hueA = Double(hash & 0xFF) / 255
        let hueB = Double((hash >> 8) & 0xFF) / 255
        let waves = 1 + Double((hash >> 16) & 0x7)
        let clarity = steps == 0 ? 1 : Double(step) / Double(steps)
        var noise = hash | 1
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            for x in 0..<size {
                let u = Double(x) / Double(size)
                let v = Double(y) / Double(size)
                let t = 0.5 + 0.5 * sin((u * waves + v * (waves / 2)) * .pi + hueA * 6)
                let colour = [
                    0.5 + 0.5 * sin(6.283 * (hueA + t)),
                    0.5 + 0.5 * sin(6.283 * (hueB + t + 0.33)),
                    0.5 + 0.5 * sin(6.283 * (hueA + hueB + t + 0.66)),
                ]
                for channel in 0..<3 {
                    noise ^= noise << 13
                    noise ^= noise >> 7
                    noise ^= noise << 17
                    let random = Double(noise & 0xFF) / 255
                    let value = clarity * colour[channel] + (1 - clarity) * random
                    pixels[(y * size + x) * 3 + channel] = UInt8(max(0, min(255, value * 255)))
                }
            }
        }
        return pixels
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
