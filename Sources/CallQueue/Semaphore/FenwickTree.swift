/// Counts over a fixed number of slots with O(log n) update and prefix sum (a binary indexed tree).
///
/// The waiter queue keeps one per ring so that "how many live waiters stand ahead of this one" costs
/// O(log n) instead of a scan, even with 100,000 waiters and cancelled ones scattered among them.
struct FenwickTree: Sendable {
    /// 1-based: `nodes[i]` covers the `i & -i` slots ending at slot `i - 1`.
    private var nodes: [Int32]

    /// A tree over `count` slots, the first `onesPrefix` of which hold 1 and the rest 0. Built in O(n).
    init(count: Int, onesPrefix: Int = 0) {
        precondition(onesPrefix >= 0 && onesPrefix <= count)
        nodes = [Int32](repeating: 0, count: count + 1)
        guard onesPrefix > 0 else { return }
        for index in 1...onesPrefix {
            nodes[index] = 1
        }
        for index in 1...count {
            let parent = index + (index & -index)
            if parent <= count {
                nodes[parent] &+= nodes[index]
            }
        }
    }

    /// The number of slots.
    var count: Int { nodes.count - 1 }

    /// Adds `delta` to the slot at `slot` (0-based).
    mutating func add(_ delta: Int32, at slot: Int) {
        var index = slot + 1
        while index < nodes.count {
            nodes[index] &+= delta
            index += index & -index
        }
    }

    /// The sum of the slots in `0..<end`.
    func prefixSum(upTo end: Int) -> Int {
        var index = end
        var sum = 0
        while index > 0 {
            sum += Int(nodes[index])
            index -= index & -index
        }
        return sum
    }
}
