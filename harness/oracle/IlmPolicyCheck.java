// An ILM policy read as Elasticsearch's PUT _ilm/policy/<name> reads it, with x-pack-core's own
// parser: the request body through PutLifecycleRequest.parseRequest (unknown fields, actions
// and phases, bad durations refused while parsing; the timeseries lifecycle's phase order and
// allowed actions checked as the policy is built), then the request's own validation.

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.elasticsearch.action.ActionRequestValidationException;
import org.elasticsearch.core.CheckedFunction;
import org.elasticsearch.core.TimeValue;
import org.elasticsearch.xcontent.ParseField;
import org.elasticsearch.xcontent.NamedXContentRegistry;
import org.elasticsearch.xcontent.XContentParser;
import org.elasticsearch.xcontent.XContentParserConfiguration;
import org.elasticsearch.xcontent.json.JsonXContent;
import org.elasticsearch.xpack.core.XPackClientPlugin;
import org.elasticsearch.xpack.core.ilm.AllocateAction;
import org.elasticsearch.xpack.core.ilm.DeleteAction;
import org.elasticsearch.xpack.core.ilm.DownsampleAction;
import org.elasticsearch.xpack.core.ilm.ForceMergeAction;
import org.elasticsearch.xpack.core.ilm.FreezeAction;
import org.elasticsearch.xpack.core.ilm.LifecycleAction;
import org.elasticsearch.xpack.core.ilm.LifecyclePolicy;
import org.elasticsearch.xpack.core.ilm.LifecycleType;
import org.elasticsearch.xpack.core.ilm.MigrateAction;
import org.elasticsearch.xpack.core.ilm.ReadOnlyAction;
import org.elasticsearch.xpack.core.ilm.RolloverAction;
import org.elasticsearch.xpack.core.ilm.SearchableSnapshotAction;
import org.elasticsearch.xpack.core.ilm.SetPriorityAction;
import org.elasticsearch.xpack.core.ilm.ShrinkAction;
import org.elasticsearch.xpack.core.ilm.TimeseriesLifecycleType;
import org.elasticsearch.xpack.core.ilm.UnfollowAction;
import org.elasticsearch.xpack.core.ilm.WaitForSnapshotAction;
import org.elasticsearch.xpack.core.ilm.action.PutLifecycleRequest;

final class IlmPolicyCheck {
    // The named parsers a node has for policies: x-pack-core's own, plus the lifecycle type and
    // the actions the x-pack-ilm module registers (all defined in x-pack-core).
    private static final NamedXContentRegistry REGISTRY = registry();

    private static NamedXContentRegistry registry() {
        List<NamedXContentRegistry.Entry> entries = new ArrayList<>(new XPackClientPlugin().getNamedXContent());
        entries.add(new NamedXContentRegistry.Entry(LifecycleType.class, new ParseField(TimeseriesLifecycleType.TYPE),
                parser -> TimeseriesLifecycleType.INSTANCE));
        action(entries, AllocateAction.NAME, AllocateAction::parse);
        action(entries, DeleteAction.NAME, DeleteAction::parse);
        action(entries, DownsampleAction.NAME, DownsampleAction::parse);
        action(entries, ForceMergeAction.NAME, ForceMergeAction::parse);
        action(entries, FreezeAction.NAME, FreezeAction::parse);
        action(entries, MigrateAction.NAME, MigrateAction::parse);
        action(entries, ReadOnlyAction.NAME, ReadOnlyAction::parse);
        action(entries, RolloverAction.NAME, RolloverAction::parse);
        action(entries, SearchableSnapshotAction.NAME, SearchableSnapshotAction::parse);
        action(entries, SetPriorityAction.NAME, SetPriorityAction::parse);
        action(entries, ShrinkAction.NAME, ShrinkAction::parse);
        action(entries, UnfollowAction.NAME, UnfollowAction::parse);
        action(entries, WaitForSnapshotAction.NAME, WaitForSnapshotAction::parse);
        return new NamedXContentRegistry(entries);
    }

    private static void action(List<NamedXContentRegistry.Entry> entries, String name,
            CheckedFunction<XContentParser, ? extends LifecycleAction, IOException> parse) {
        entries.add(new NamedXContentRegistry.Entry(LifecycleAction.class, new ParseField(name), parse));
    }

    private IlmPolicyCheck() {
    }

    static Map<String, Object> check(String name, String json) {
        // The put action checks the name from the URL before it reads the body.
        try {
            LifecyclePolicy.validatePolicyName(name);
        } catch (RuntimeException e) {
            return Map.of("error", e.getMessage());
        }
        XContentParserConfiguration config = XContentParserConfiguration.EMPTY.withRegistry(REGISTRY);
        try (XContentParser parser = JsonXContent.jsonXContent.createParser(config, json)) {
            PutLifecycleRequest request = PutLifecycleRequest.parseRequest(new PutLifecycleRequest.Factory() {
                @Override
                public PutLifecycleRequest create(LifecyclePolicy policy) {
                    return new PutLifecycleRequest(TimeValue.THIRTY_SECONDS, TimeValue.THIRTY_SECONDS, policy);
                }

                @Override
                public String getPolicyName() {
                    return name;
                }
            }, parser);
            ActionRequestValidationException invalid = request.validate();
            if (invalid != null) {
                return Map.of("error", invalid.getMessage());
            }
            LifecyclePolicy policy = request.getPolicy();
            policy.validate();
            return Map.of("ok", true, "phases", String.join(",", policy.getPhases().keySet()));
        } catch (Exception e) {
            Throwable cause = e;
            StringBuilder reason = new StringBuilder(e.getClass().getSimpleName() + ": " + e.getMessage());
            while (cause.getCause() != null && cause.getCause() != cause) {
                cause = cause.getCause();
                reason.append(" / ").append(cause.getMessage());
            }
            return Map.of("error", reason.toString());
        }
    }
}
