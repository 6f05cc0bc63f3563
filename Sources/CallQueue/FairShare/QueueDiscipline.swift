/// The order in which a group's waiting calls start.
public enum QueueDiscipline: Sendable, Hashable {
    /// Arrival order: AUTOMATIC1111's and Gradio's. Fairness keys and priorities are ignored. The default.
    case fifo
    /// Fair share between keys, with caps per key and priorities: see ``FairShare``.
    case fairShare(FairShare)

    /// The fair share, when that is the discipline.
    var fairShare: FairShare? {
        if case .fairShare(let fairShare) = self { return fairShare }
        return nil
    }
}
