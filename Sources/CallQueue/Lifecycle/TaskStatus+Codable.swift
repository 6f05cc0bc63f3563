/// The wire format of a status, one flat JSON object a web client uses as it is. Durations are seconds
/// (numbers); absent values are left out.
///
/// ```json
/// {"id":"task(3f2a)","group":"gpu","version":42,"state":"queued",
///  "position":2,"queueSize":5,"heldBy":"group","estimatedWait":12.5,"eta":18.75}
/// {"id":"task(3f2a)","group":"gpu","version":57,"state":"running",
///  "slot":1,"progress":0.4,"step":"8/20","elapsed":2.5,"eta":3.75}
/// {"id":"task(3f2a)","group":"gpu","version":90,"state":"finished",
///  "outcome":"failed","message":"ModelError: out of memory","queuedFor":12.1,"ranFor":4.2,"started":true}
/// ```
extension TaskStatus: Codable {
    private enum CodingKeys: String, CodingKey {
        case id, group, version, state, fairnessKey
        case position, queueSize, heldBy, estimatedWait, eta
        case slot, progress, step, elapsed
        case outcome, message, queuedFor, ranFor, started
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(group, forKey: .group)
        try container.encode(version, forKey: .version)
        try container.encode(state.name, forKey: .state)
        try container.encodeIfPresent(fairnessKey, forKey: .fairnessKey)
        switch state {
        case .queued(let queued):
            try container.encode(queued.position, forKey: .position)
            try container.encode(queued.queueSize, forKey: .queueSize)
            try container.encode(queued.heldBy, forKey: .heldBy)
            try container.encode(queued.estimatedWait.seconds, forKey: .estimatedWait)
            try container.encode(queued.eta.seconds, forKey: .eta)
        case .running(let running):
            try container.encode(running.slot, forKey: .slot)
            try container.encodeIfPresent(running.progress, forKey: .progress)
            try container.encodeIfPresent(running.step, forKey: .step)
            try container.encode(running.elapsed.seconds, forKey: .elapsed)
            try container.encode(running.eta.seconds, forKey: .eta)
        case .finished(let finished):
            switch finished.outcome {
            case .succeeded: try container.encode("succeeded", forKey: .outcome)
            case .cancelled: try container.encode("cancelled", forKey: .outcome)
            case .failed(let message):
                try container.encode("failed", forKey: .outcome)
                try container.encode(message, forKey: .message)
            }
            try container.encode(finished.queuedFor.seconds, forKey: .queuedFor)
            try container.encode(finished.ranFor.seconds, forKey: .ranFor)
            try container.encode(finished.started, forKey: .started)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func seconds(_ key: CodingKeys) throws -> Duration {
            let value = try container.decode(Double.self, forKey: key)
            // `Duration.seconds(_:)` traps past about 9.2e18 s; a status never holds more than the ETA limit.
            guard value.isFinite, value >= 0, value <= Duration.etaLimit.seconds else {
                throw DecodingError.dataCorruptedError(
                    forKey: key, in: container,
                    debugDescription:
                        "\(key.stringValue) must be seconds in 0...\(Duration.etaLimit.seconds), not \(value)")
            }
            return .seconds(value)
        }
        let stateName = try container.decode(String.self, forKey: .state)
        let state: State
        switch stateName {
        case "queued":
            state = .queued(
                Queued(
                    position: try container.decode(Int.self, forKey: .position),
                    queueSize: try container.decode(Int.self, forKey: .queueSize),
                    heldBy: try container.decode(Holder.self, forKey: .heldBy),
                    estimatedWait: try seconds(.estimatedWait),
                    eta: try seconds(.eta)
                ))
        case "running":
            state = .running(
                Running(
                    slot: try container.decode(Int.self, forKey: .slot),
                    progress: try container.decodeIfPresent(Double.self, forKey: .progress),
                    step: try container.decodeIfPresent(String.self, forKey: .step),
                    elapsed: try seconds(.elapsed),
                    eta: try seconds(.eta)
                ))
        case "finished":
            let outcome: Outcome
            switch try container.decode(String.self, forKey: .outcome) {
            case "succeeded": outcome = .succeeded
            case "cancelled": outcome = .cancelled
            case "failed": outcome = .failed(message: try container.decode(String.self, forKey: .message))
            case let other:
                throw DecodingError.dataCorruptedError(
                    forKey: .outcome, in: container, debugDescription: "unknown outcome '\(other)'")
            }
            state = .finished(
                Finished(
                    outcome: outcome,
                    queuedFor: try seconds(.queuedFor),
                    ranFor: try seconds(.ranFor),
                    started: try container.decode(Bool.self, forKey: .started)
                ))
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .state, in: container, debugDescription: "unknown state '\(stateName)'")
        }
        self.init(
            id: try container.decode(TaskID.self, forKey: .id),
            group: try container.decode(ConcurrencyGroupID.self, forKey: .group),
            state: state,
            version: try container.decode(UInt64.self, forKey: .version),
            fairnessKey: try container.decodeIfPresent(FairnessKey.self, forKey: .fairnessKey)
        )
    }
}
