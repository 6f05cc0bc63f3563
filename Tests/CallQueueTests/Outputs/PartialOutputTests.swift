import CallQueueTestSupport
import Foundation
import XCTest

@testable import CallQueue

/// Partial outputs: chunks in order, latest values coalesced, late and slow readers with their missed counts,
/// the byte and chunk caps, cancel mid-stream, batches, the history and the wire format.
final class PartialOutputTests: XCTestCase {
    /// A call that emits what `body` says, once `go` opens; `started` opens when it runs.
    private func emittingCall(
        _ queue: CallQueue, id: TaskID, started: Gate = Gate(), go: Gate = Gate(),
        _ body: @escaping @Sendable (CallContext) async throws -> Void
    ) -> Task<Void, any Error> {
        Task {
            try await queue.runGPUCall(id: id) { context in
                started.open()
                await go.wait()
                try await body(context)
            }
        }
    }

    /// Every chunk reaches a reader that reads while the call emits, in order, with its index, before the
    /// finished status; nothing is missed within the window.
    func testChunksArriveInOrderThenTheFinalStatus() async throws {
        let queue = try CallQueue()
        let started = Gate()
        let go = Gate()
        let call = emittingCall(queue, id: "task(gen)", started: started, go: go) { context in
            for index in 0..<500 {
                XCTAssertTrue(context.emitChunk("t\(index)"))
                if index % 50 == 0 { await Task.yield() }
            }
        }
        await started.wait()
        var chunks: [OutputChunk<String>] = []
        var missed = 0
        var final: TaskStatus?
        let outputs = try queue.outputs(of: "task(gen)", chunks: String.self)
        go.open()
        for await update in outputs {
            XCTAssertNil(final, "nothing after the final status")
            chunks += update.chunks
            missed += update.missedChunks
            XCTAssertEqual(update.nextChunk, chunks.count)
            if update.isFinal { final = update.status }
        }
        try await call.value
        XCTAssertEqual(missed, 0)
        XCTAssertEqual(chunks.map(\.index), Array(0..<500))
        XCTAssertEqual(chunks.map(\.value), (0..<500).map { "t\($0)" })
        XCTAssertEqual(final?.state.finished?.outcome, .succeeded)
    }

    /// A reader gets the newest latest value, not the ones in between; the finished task keeps the last one
    /// in its history, for a reader that comes later and for a polling route.
    func testLatestValuesAreCoalescedAndKeptInTheHistory() async throws {
        let queue = try CallQueue()
        let started = Gate()
        let go = Gate()
        let emitted = Gate()
        let finish = Gate()
        let call = emittingCall(queue, id: "task(img)", started: started, go: go) { context in
            for step in 1...100 { context.emitLatest("preview \(step)") }
            emitted.open()
            await finish.wait()
        }
        await started.wait()
        var iterator = try queue.outputs(of: "task(img)", latest: String.self).makeAsyncIterator()
        let first = await iterator.next()
        XCTAssertNil(first?.latest, "nothing emitted yet")
        XCTAssertTrue(first?.status?.state.isRunning ?? false)
        go.open()
        await emitted.wait()
        let second = await iterator.next()
        XCTAssertEqual(second?.latest, "preview 100", "one read, the newest")
        XCTAssertNil(second?.status, "the status did not change")
        XCTAssertEqual(queue.latestOutput(of: "task(img)", as: String.self), "preview 100")
        finish.open()
        try await call.value
        let last = await iterator.next()
        XCTAssertTrue(last?.isFinal ?? false)
        XCTAssertNil(last?.latest, "already read")
        let end = await iterator.next()
        XCTAssertNil(end)
        XCTAssertEqual(queue.latestOutput(of: "task(img)", as: String.self), "preview 100", "kept in the history")
        XCTAssertNil(queue.latestOutput(of: "task(img)", as: Int.self), "another type reads as nil")
        var late: [TaskOutputUpdate<String, Never>] = []
        for await update in try queue.outputs(of: "task(img)", latest: String.self) { late.append(update) }
        XCTAssertEqual(late.count, 1)
        XCTAssertEqual(late.first?.latest, "preview 100")
        XCTAssertEqual(late.first?.status?.state.finished?.outcome, .succeeded)
    }

    /// A reader that comes after the call finished is told how many chunks it missed (all of them, or those
    /// after the index it resumes from): its chunks are gone, the count stays with the history.
    func testAReaderAfterTheFinishIsToldWhatItMissed() async throws {
        let queue = try CallQueue()
        try await queue.runGPUCall(id: "task(said)") { context in
            for index in 0..<30 { context.emitChunk("c\(index)") }
        }
        for (after, missed) in [(nil, 30), (9, 20), (29, 0), (500, 0)] as [(Int?, Int)] {
            var updates: [TaskOutputUpdate<Never, String>] = []
            for await update in try queue.outputs(of: "task(said)", chunks: String.self, after: after) {
                updates.append(update)
            }
            XCTAssertEqual(updates.count, 1)
            XCTAssertEqual(updates.first?.missedChunks, missed, "after \(String(describing: after))")
            XCTAssertEqual(updates.first?.chunks.count, 0)
            XCTAssertEqual(updates.first?.nextChunk, 30)
            XCTAssertTrue(updates.first?.isFinal ?? false)
        }
        try await queue.runGPUCall(id: "task(silent)") { _ in }
        var silent: [TaskOutputUpdate<String, String>] = []
        for await update in try queue.outputs(of: "task(silent)", latest: String.self, chunks: String.self) {
            silent.append(update)
        }
        XCTAssertEqual(silent.map(\.missedChunks), [0], "a call that emitted nothing")
        XCTAssertNil(silent.first?.latest)
    }

    /// A finished task's last latest value is kept exactly as long as its status.
    func testTheLatestValueIsForgottenWithTheStatus() async throws {
        let queue = try CallQueue(configuration: .init(finishedTaskHistory: 1))
        try await queue.runGPUCall(id: "task(first)") { context in _ = context.emitLatest("first") }
        try await queue.runGPUCall(id: "task(plain)") { _ in }
        XCTAssertNil(queue.latestOutput(of: "task(first)", as: String.self), "its status is forgotten")
        try await queue.runGPUCall(id: "task(second)") { context in _ = context.emitLatest("second") }
        XCTAssertEqual(queue.latestOutput(of: "task(second)", as: String.self), "second")
    }

    /// A reader that starts late gets the chunks still in the window and is told how many it missed; one that
    /// resumes after a chunk index (a `Last-Event-ID`) starts right after it, or at the window when that chunk
    /// is gone.
    func testLateReadersGetTheWindowAndTheMissedCount() async throws {
        let queue = try CallQueue(configuration: .init(partialOutputs: .init(maxBufferedChunks: 10)))
        let emitted = Gate()
        let finish = Gate()
        let call = emittingCall(queue, id: "task(long)", go: Gate.opened()) { context in
            for index in 0..<25 { context.emitChunk("c\(index)") }
            emitted.open()
            await finish.wait()
        }
        await emitted.wait()
        func firstUpdate(after lastChunk: Int?) async throws -> TaskOutputUpdate<Never, String>? {
            var iterator = try queue.outputs(of: "task(long)", chunks: String.self, after: lastChunk)
                .makeAsyncIterator()
            return await iterator.next()
        }
        let fresh = try await firstUpdate(after: nil)
        XCTAssertEqual(fresh?.chunks.map(\.index), Array(15..<25))
        XCTAssertEqual(fresh?.missedChunks, 15, "its first chunk says where it starts")
        let resumed = try await firstUpdate(after: 19)
        XCTAssertEqual(resumed?.chunks.map(\.index), Array(20..<25))
        XCTAssertEqual(resumed?.missedChunks, 0)
        let tooOld = try await firstUpdate(after: 2)
        XCTAssertEqual(tooOld?.chunks.first?.index, 15)
        XCTAssertEqual(tooOld?.missedChunks, 12, "chunks 3 to 14 are gone")
        let pastTheEnd = try await firstUpdate(after: 1_000)
        XCTAssertEqual(pastTheEnd?.chunks.count, 0, "an index past the newest reads as the newest")
        XCTAssertEqual(pastTheEnd?.nextChunk, 25)
        let overflow = try await firstUpdate(after: Int.max)
        XCTAssertEqual(overflow?.nextChunk, 25)
        let negative = try await firstUpdate(after: -50)
        XCTAssertEqual(negative?.chunks.first?.index, 15)
        finish.open()
        try await call.value
    }

    /// A reader slower than the call misses the chunks dropped before it read them, is told how many, and gets
    /// the rest in order.
    func testASlowReaderIsToldWhatItMissed() async throws {
        let queue = try CallQueue(configuration: .init(partialOutputs: .init(maxBufferedChunks: 10)))
        let started = Gate()
        let go = Gate()
        let burst = Gate()
        let more = Gate()
        let call = emittingCall(queue, id: "task(fast)", started: started, go: go) { context in
            for index in 0..<3 { context.emitChunk("c\(index)") }
            burst.open()
            await more.wait()
            for index in 3..<40 { context.emitChunk("c\(index)") }
        }
        await started.wait()
        var iterator = try queue.outputs(of: "task(fast)", chunks: String.self).makeAsyncIterator()
        _ = await iterator.next()  // running, nothing yet
        go.open()
        await burst.wait()
        let first = await iterator.next()
        XCTAssertEqual(first?.chunks.map(\.value), ["c0", "c1", "c2"])
        more.open()
        try await call.value
        let last = await iterator.next()
        XCTAssertEqual(last?.missedChunks, 27, "chunks 3 to 29 were dropped before it read again")
        XCTAssertEqual(last?.chunks.map(\.index), Array(30..<40))
        XCTAssertTrue(last?.isFinal ?? false)
    }

    /// The byte budget holds the chunks and the latest value together; an enormous chunk is dropped at once and
    /// counted as missed; an enormous latest value is refused and the previous one stays.
    func testTheByteBudgetCountsEveryValue() async throws {
        let lifecycle = try TaskLifecycle(configuration: .init(partialOutputs: .init(maxBufferedBytes: 100)))
        let id = try lifecycle.register(group: "gen")
        try lifecycle.start(id)
        var iterator = try lifecycle.outputs(of: id, latest: String.self, chunks: String.self).makeAsyncIterator()
        _ = await iterator.next()
        func buffer() -> (chunks: Int, bytes: Int) {
            lifecycle.scheduler.inspect { state in
                let buffer = state.tasks[id]!.outputs!
                return (buffer.bufferedChunks, buffer.bufferedBytes)
            }
        }
        XCTAssertTrue(lifecycle.emitChunk(String(repeating: "a", count: 60), for: id))
        XCTAssertTrue(lifecycle.emitChunk(String(repeating: "b", count: 30), for: id))
        XCTAssertEqual(buffer().bytes, 90)
        XCTAssertTrue(lifecycle.emitLatest(String(repeating: "p", count: 20), for: id))
        XCTAssertEqual(buffer().chunks, 1, "the oldest chunk made room for the latest value")
        XCTAssertEqual(buffer().bytes, 50)
        XCTAssertFalse(lifecycle.emitLatest(String(repeating: "P", count: 101), for: id), "larger than the budget")
        XCTAssertFalse(lifecycle.emitChunk([UInt8](repeating: 0, count: 10_000_000), for: id), "dropped at once")
        XCTAssertEqual(buffer().chunks, 0)
        XCTAssertEqual(buffer().bytes, 20, "the latest value stays; the enormous chunk took the others with it")
        let update = await iterator.next()
        XCTAssertEqual(update?.latest?.count, 20, "the refused value did not replace it")
        XCTAssertEqual(update?.missedChunks, 3, "two evicted, one dropped at once, and the [UInt8] is no String")
        XCTAssertEqual(update?.chunks.count, 0)
        XCTAssertEqual(update?.nextChunk, 3)
        try lifecycle.finish(id, outcome: .succeeded)
    }

    /// A reader that never reads holds nothing back and costs nothing per emit: the task's memory stays at the
    /// cap over 10,000 emits, and the reader is never parked on it.
    func testAReaderThatNeverReadsKeepsMemoryAtTheCap() async throws {
        let limits = PartialOutputLimits(maxBufferedChunks: 64, maxBufferedBytes: 4_096)
        let lifecycle = try TaskLifecycle(configuration: .init(partialOutputs: limits))
        let id = try lifecycle.register(group: "gen")
        try lifecycle.start(id)
        let idle = try lifecycle.outputs(of: id, chunks: String.self)
        var maxChunks = 0
        var maxBytes = 0
        for index in 0..<10_000 {
            lifecycle.emitChunk(String(repeating: "x", count: index % 200), for: id)
            let (chunks, bytes, parked) = lifecycle.scheduler.inspect { state in
                let buffer = state.tasks[id]!.outputs!
                return (buffer.bufferedChunks, buffer.bufferedBytes, buffer.parkedReaders.count)
            }
            maxChunks = max(maxChunks, chunks)
            maxBytes = max(maxBytes, bytes)
            XCTAssertEqual(parked, 0)
        }
        XCTAssertEqual(maxChunks, 64)
        XCTAssertLessThanOrEqual(maxBytes, 4_096)
        try lifecycle.finish(id, outcome: .succeeded)
        var total = 0
        for await update in idle { total += update.chunks.count + update.missedChunks }
        XCTAssertEqual(total, 10_000, "every chunk is read or counted as missed")
    }

    /// A cancelled call's readers get what it emitted, then the cancelled status.
    func testACancelledCallsReadersGetItsChunksThenTheCancel() async throws {
        let queue = try CallQueue()
        let emitted = Gate()
        let call = emittingCall(queue, id: "task(stop)", go: Gate.opened()) { context in
            for word in ["one", "two", "three"] { context.emitChunk(word) }
            emitted.open()
            while !Task.isCancelled { await Task.yield() }
            context.emitChunk("after the cancel, before the return")
            throw CancellationError()
        }
        await emitted.wait()
        let outputs = try queue.outputs(of: "task(stop)", chunks: String.self)
        try queue.cancel("task(stop)")
        var words: [String] = []
        var final: TaskStatus?
        for await update in outputs {
            words += update.chunks.map(\.value)
            if update.isFinal { final = update.status }
        }
        _ = try? await call.value
        XCTAssertEqual(words, ["one", "two", "three", "after the cancel, before the return"])
        XCTAssertEqual(final?.state.finished?.outcome, .cancelled)
    }

    /// An emit after the call finished (a task it left behind) is ignored, not a trap.
    func testAnEmitAfterTheFinishIsIgnored() async throws {
        let queue = try CallQueue()
        let leaked = Recorder<CallContext>()
        try await queue.runGPUCall(id: "task(done)") { context in
            leaked.append(context)
            context.emitLatest("last")
        }
        let context = try XCTUnwrap(leaked.elements.first)
        XCTAssertFalse(context.emitChunk("late"))
        XCTAssertFalse(context.emitLatest("later"))
        XCTAssertEqual(queue.latestOutput(of: "task(done)", as: String.self), "last")
        XCTAssertThrowsError(try queue.outputs(of: "task(never)", chunks: String.self)) { error in
            XCTAssertEqual((error as? CallQueueError)?.code, .unknownTask)
        }
    }

    /// A batch's body emits to each member: each member's reader gets its own chunks and latest value.
    func testABatchEmitsPerMember() async throws {
        let queue = try CallQueue(configuration: .init(groups: ["gpu": .init(limit: 1)]))
        let gate = Gate()
        let holder = try queue.submit(id: "task(holder)", group: "gpu") { _ in await gate.wait() }
        await waitForStatus(queue, "task(holder)") { $0.isRunning }
        let caption = queue.makeBatcher(group: "gpu", maxBatchSize: 3) { (inputs: [String], context: BatchContext) in
            for (index, input) in inputs.enumerated() {
                for word in input.split(separator: " ") { context.emitChunk(String(word), to: index) }
                context.emitLatest("done \(index)", to: index)
            }
            XCTAssertFalse(context.emitChunk("nobody", to: inputs.count), "an index outside the batch")
            return inputs.map { $0.uppercased() }
        }
        let inputs = ["a red fox", "two blue birds", "one cat"]
        let members = try inputs.enumerated().map { try caption.submit($1, id: TaskID("task(m\($0))")) }
        let readers = try members.map { member in
            let outputs = try queue.outputs(of: member.id, latest: String.self, chunks: String.self)
            return Task {
                var words: [String] = []
                var latest: String?
                for await update in outputs {
                    words += update.chunks.map(\.value)
                    latest = update.latest ?? latest
                }
                return (words, latest)
            }
        }
        gate.open()
        try await holder.value
        for (index, reader) in readers.enumerated() {
            let (words, latest) = await reader.value
            XCTAssertEqual(words, inputs[index].split(separator: " ").map(String.init))
            XCTAssertEqual(latest, "done \(index)")
            let output = try await members[index].value
            XCTAssertEqual(output, inputs[index].uppercased())
        }
    }

    /// Emits do not change a task's status version: a status reader is not told of them.
    func testEmitsAreNotStatusChanges() async throws {
        let lifecycle = try TaskLifecycle()
        let id = try lifecycle.register()
        try lifecycle.start(id)
        let before = try lifecycle.status(of: id).version
        for index in 0..<10 { lifecycle.emitChunk("c\(index)", for: id) }
        lifecycle.emitLatest("p", for: id)
        XCTAssertEqual(try lifecycle.status(of: id).version, before)
        XCTAssertFalse(lifecycle.emitChunk("c", for: "task(unknown)"))
        let waiting = try lifecycle.register()
        XCTAssertFalse(lifecycle.emitChunk("c", for: waiting), "a task that has not started emits nothing")
        try lifecycle.finish(id, outcome: .succeeded)
        try lifecycle.finish(waiting, outcome: .cancelled)
    }

    /// One consumer per sequence: a second task reading while the first waits gets the end, the first goes on.
    func testASecondConsumerEnds() async throws {
        let lifecycle = try TaskLifecycle()
        let id = try lifecycle.register()
        try lifecycle.start(id)
        let outputs = try lifecycle.outputs(of: id, chunks: String.self)
        var first = outputs.makeAsyncIterator()
        _ = await first.next()
        let waiting = Task {
            var iterator = first
            return await iterator.next()
        }
        await waitUntil("the first reader parks") {
            lifecycle.scheduler.inspect { $0.tasks[id]?.outputs?.parkedReaders.isEmpty == false }
        }
        var second = outputs.makeAsyncIterator()
        let secondRead = await second.next()
        XCTAssertNil(secondRead)
        lifecycle.emitChunk("hello", for: id)
        let firstRead = await waiting.value
        XCTAssertEqual(firstRead?.chunks.map(\.value), ["hello"])
        try lifecycle.finish(id, outcome: .succeeded)
    }

    /// Stress: calls emit chunks and latest values while readers join, read at their own pace, leave early or
    /// are cancelled, and some calls are cancelled by id. Every reader that stays sees increasing indices, each
    /// chunk read or counted as missed, and the final status last; nothing is left parked.
    func testStressReadersJoinReadAndLeaveWhileCallsEmit() async throws {
        let rounds = stressIterations(40, minimum: 4)
        let queue = try CallQueue(
            configuration: .init(
                defaultLimit: .limited(4), partialOutputs: .init(maxBufferedChunks: 16, maxBufferedBytes: 512)))
        for round in 0..<rounds {
            let ids = (0..<4).map { TaskID("task(s\(round)-\($0))") }
            let emitted = Recorder<(call: Int, count: Int)>()
            let started = ids.map { _ in Gate() }
            let go = Gate()
            let calls = ids.enumerated().map { index, id in
                Task {
                    try await queue.runGPUCall(id: id) { context in
                        started[index].open()
                        await go.wait()
                        var count = 0
                        for chunk in 0..<(200 + 37 * index) {
                            if Task.isCancelled { break }
                            context.emitChunk(String(repeating: "t", count: chunk % 40))
                            count += 1
                            if chunk % 25 == 0 { context.emitLatest("preview \(chunk)") }
                            if chunk % 7 == 0 { await Task.yield() }
                        }
                        emitted.append((index, count))
                    }
                }
            }
            for gate in started { await gate.wait() }
            let readers = try ids.flatMap { id in
                try (0..<3).map { reader in
                    // The first reader joins before the call emits, the others while it does.
                    if reader == 1 { go.open() }
                    let outputs = try queue.outputs(of: id, latest: String.self, chunks: String.self)
                    return Task { () -> (read: Int, missed: Int, ordered: Bool, finalLast: Bool)? in
                        var read = 0
                        var missed = 0
                        var next = -1
                        var ordered = true
                        var finalLast = true
                        var sawFinal = false
                        for await update in outputs {
                            if sawFinal { finalLast = false }
                            for chunk in update.chunks {
                                ordered = ordered && chunk.index > next
                                next = chunk.index
                            }
                            read += update.chunks.count
                            missed += update.missedChunks
                            sawFinal = update.isFinal
                            if reader == 2 && read > 50 { return nil }  // leaves early
                            if reader == 1 { await Task.yield() }
                        }
                        return sawFinal ? (read, missed, ordered, finalLast) : nil
                    }
                }
            }
            if round % 3 == 0 { _ = try? queue.cancel(ids[1]) }
            if round % 4 == 0 { readers[0].cancel() }
            for call in calls { _ = try? await call.value }
            // Each call's chunk count; a call cancelled before its body began emitted none.
            var counts = [Int](repeating: 0, count: ids.count)
            for (call, count) in emitted.elements { counts[call] = count }
            for (index, reader) in readers.enumerated() {
                guard let outcome = await reader.value else { continue }
                XCTAssertTrue(outcome.ordered, "round \(round), reader \(index)")
                XCTAssertTrue(outcome.finalLast, "round \(round), reader \(index)")
                XCTAssertEqual(
                    outcome.read + outcome.missed, counts[index / 3],
                    "round \(round), reader \(index): every chunk read or counted as missed")
            }
            XCTAssertTrue(queue.lifecycle.scheduler.inspect { $0.tasks.isEmpty })
        }
    }

    func testLimitsAreChecked() {
        for limits in [PartialOutputLimits(maxBufferedChunks: 0), PartialOutputLimits(maxBufferedBytes: 0)] {
            XCTAssertThrowsError(try CallQueue(configuration: .init(partialOutputs: limits))) { error in
                XCTAssertEqual((error as? CallQueueError)?.code, .invalidArgument)
            }
        }
    }

    /// The wire format a browser reads: chunks with their indices, the status and the latest value beside them.
    func testTheWireFormat() throws {
        let update = TaskOutputUpdate<String, String>(
            taskID: "task(w)",
            status: TaskStatus(
                id: "task(w)", group: "gpu",
                state: .running(.init(slot: 0, progress: 0.5, step: nil, elapsed: .seconds(2), eta: .seconds(2))),
                version: 7),
            latest: "a red", chunks: [.init(index: 12, value: " red"), .init(index: 13, value: " fox")],
            missedChunks: 1, nextChunk: 14)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = try XCTUnwrap(String(data: try encoder.encode(update), encoding: .utf8))
        XCTAssertTrue(json.contains(#""chunks":[{"index":12,"value":" red"},{"index":13,"value":" fox"}]"#), json)
        XCTAssertTrue(json.contains(#""nextChunk":14"#), json)
        XCTAssertTrue(json.contains(#""missedChunks":1"#), json)
        XCTAssertTrue(json.contains(#""latest":"a red""#), json)
        XCTAssertTrue(json.contains(#""state":"running""#), json)
        let decoded = try JSONDecoder().decode(TaskOutputUpdate<String, String>.self, from: encoder.encode(update))
        XCTAssertEqual(decoded, update)
        let bare = TaskOutputUpdate<Never, String>(
            taskID: "task(w)", status: nil, latest: nil, chunks: [], missedChunks: 0, nextChunk: 3)
        let bareJSON = try XCTUnwrap(String(data: try encoder.encode(bare), encoding: .utf8))
        XCTAssertEqual(bareJSON, #"{"chunks":[],"id":"task(w)","missedChunks":0,"nextChunk":3}"#)
    }
}

extension Gate {
    /// A gate already open.
    static func opened() -> Gate {
        let gate = Gate()
        gate.open()
        return gate
    }
}
