import CallQueue

// Twelve "requests" arrive one after another; one GPU lock runs their "generations" one at a time,
// in arrival order, and each sees how many are still waiting behind it.
let gpu = FIFOLock()
let start = ContinuousClock.now
let requests = 12

func elapsedMilliseconds() -> Int64 {
    let elapsed = (ContinuousClock.now - start).components
    return elapsed.seconds * 1000 + elapsed.attoseconds / 1_000_000_000_000_000
}

await withTaskGroup(of: Void.self) { group in
    for request in 1...requests {
        group.addTask {
            do {
                try await gpu.withLock {
                    print("request \(request) runs at \(elapsedMilliseconds()) ms; \(gpu.snapshot.waiting) waiting")
                    try await Task.sleep(for: .milliseconds(25))
                }
            } catch {
                print("request \(request) failed: \(error)")
            }
        }
        // Each request queues before the next arrives, so arrival order is well defined.
        while gpu.snapshot.waiting + gpu.snapshot.held < request { await Task.yield() }
    }
}
print("\(requests) requests served one at a time, in arrival order, in \(elapsedMilliseconds()) ms")
