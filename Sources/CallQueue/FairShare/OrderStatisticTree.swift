/// A sorted set with O(log n) insert, remove, minimum and rank (how many elements are smaller): a treap whose
/// nodes live in one array and count their subtrees.
///
/// The fair-share line keeps its waiting calls in one, ordered by their place, so that a call's place is its
/// rank. Priorities come from a generator seeded per tree, so a run is repeatable. A value type with no
/// locking of its own.
struct OrderStatisticTree<Element: Comparable> {
    fileprivate struct Node {
        var element: Element
        var left: Int32
        var right: Int32
        var size: Int32
        var priority: UInt32
    }

    /// Above this many node slots an emptied tree gives its memory back.
    private static var retainedCapacity: Int { 1024 }

    private var nodes: ContiguousArray<Node> = []
    private var freeSlots: [Int32] = []
    private var root: Int32 = -1
    private var seed: UInt64 = 0x2545_F491_4F6C_DD1D

    var count: Int { root < 0 ? 0 : Int(nodes[Int(root)].size) }
    var isEmpty: Bool { root < 0 }

    /// The smallest element.
    var min: Element? {
        guard root >= 0 else { return nil }
        var node = root
        while nodes[Int(node)].left >= 0 { node = nodes[Int(node)].left }
        return nodes[Int(node)].element
    }

    /// How many elements are smaller than `element` (its index, when it is in the set).
    func rank(of element: Element) -> Int {
        var node = root
        var rank = 0
        while node >= 0 {
            let current = nodes[Int(node)]
            if current.element < element {
                rank += Int(size(current.left)) + 1
                node = current.right
            } else {
                node = current.left
            }
        }
        return rank
    }

    /// Adds `element`, which must not be in the set.
    mutating func insert(_ element: Element) {
        let node = allocate(element)
        root = insert(node, into: root)
    }

    /// Removes `element`; returns whether it was in the set.
    @discardableResult
    mutating func remove(_ element: Element) -> Bool {
        let (newRoot, found) = remove(element, from: root)
        root = newRoot
        if root < 0 && nodes.count > Self.retainedCapacity {
            self = OrderStatisticTree()
        }
        return found
    }

    /// Every element in order.
    var sorted: [Element] {
        var result: [Element] = []
        result.reserveCapacity(count)
        var stack: [Int32] = []
        var node = root
        while node >= 0 || !stack.isEmpty {
            while node >= 0 {
                stack.append(node)
                node = nodes[Int(node)].left
            }
            let top = stack.removeLast()
            result.append(nodes[Int(top)].element)
            node = nodes[Int(top)].right
        }
        return result
    }

    mutating func removeAll() {
        self = OrderStatisticTree()
    }

    // MARK: Nodes

    private func size(_ node: Int32) -> Int32 {
        node < 0 ? 0 : nodes[Int(node)].size
    }

    private mutating func resize(_ node: Int32) {
        let index = Int(node)
        nodes[index].size = size(nodes[index].left) + size(nodes[index].right) + 1
    }

    private mutating func allocate(_ element: Element) -> Int32 {
        // xorshift64*: cheap, and a fixed seed makes the shape of a tree repeatable.
        seed ^= seed >> 12
        seed ^= seed << 25
        seed ^= seed >> 27
        let priority = UInt32(truncatingIfNeeded: (seed &* 0x2545_F491_4F6C_DD1D) >> 32)
        let node = Node(element: element, left: -1, right: -1, size: 1, priority: priority)
        if let slot = freeSlots.popLast() {
            nodes[Int(slot)] = node
            return slot
        }
        nodes.append(node)
        return Int32(nodes.count - 1)
    }

    private mutating func insert(_ node: Int32, into tree: Int32) -> Int32 {
        guard tree >= 0 else { return node }
        let index = Int(tree)
        if nodes[Int(node)].priority > nodes[index].priority {
            let (left, right) = split(tree, below: nodes[Int(node)].element)
            nodes[Int(node)].left = left
            nodes[Int(node)].right = right
            resize(node)
            return node
        }
        if nodes[Int(node)].element < nodes[index].element {
            let left = insert(node, into: nodes[index].left)
            nodes[index].left = left
        } else {
            let right = insert(node, into: nodes[index].right)
            nodes[index].right = right
        }
        nodes[index].size += 1
        return tree
    }

    private mutating func remove(_ element: Element, from tree: Int32) -> (Int32, Bool) {
        guard tree >= 0 else { return (tree, false) }
        let index = Int(tree)
        let current = nodes[index].element
        if current == element {
            freeSlots.append(tree)
            return (merge(nodes[index].left, nodes[index].right), true)
        }
        let found: Bool
        if element < current {
            let (left, removed) = remove(element, from: nodes[index].left)
            nodes[index].left = left
            found = removed
        } else {
            let (right, removed) = remove(element, from: nodes[index].right)
            nodes[index].right = right
            found = removed
        }
        if found { nodes[index].size -= 1 }
        return (tree, found)
    }

    /// Splits `tree` into the elements below `pivot` and the rest.
    private mutating func split(_ tree: Int32, below pivot: Element) -> (Int32, Int32) {
        guard tree >= 0 else { return (-1, -1) }
        let index = Int(tree)
        if nodes[index].element < pivot {
            let (left, right) = split(nodes[index].right, below: pivot)
            nodes[index].right = left
            resize(tree)
            return (tree, right)
        }
        let (left, right) = split(nodes[index].left, below: pivot)
        nodes[index].left = right
        resize(tree)
        return (left, tree)
    }

    /// Joins two trees whose elements are all smaller in the first.
    private mutating func merge(_ first: Int32, _ second: Int32) -> Int32 {
        guard first >= 0 else { return second }
        guard second >= 0 else { return first }
        if nodes[Int(first)].priority > nodes[Int(second)].priority {
            let right = merge(nodes[Int(first)].right, second)
            nodes[Int(first)].right = right
            resize(first)
            return first
        }
        let left = merge(first, nodes[Int(second)].left)
        nodes[Int(second)].left = left
        resize(second)
        return second
    }
}

extension OrderStatisticTree: Sendable where Element: Sendable {}
extension OrderStatisticTree.Node: Sendable where Element: Sendable {}
