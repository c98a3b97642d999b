// Logstash's grok and date stages, run with the engines Logstash runs them with, for the tests.
//
// One request per stdin line, one response per stdout line, both JSON. A request is an array
// of operations and gets an array of results in the same order, so the tests can send a whole
// batch in one write without either pipe filling up.
//
//   {"op": "grok", "pattern": "...", "definitions": {...}}  -> {"id": n} or {"error": "..."}
//   {"op": "match", "grok": n, "text": "..."}               -> {"captures": {field: string}} or {"captures": null}
//   {"op": "date", "formats": [...], "timezone": "Europe/Paris", "locale": "en"} -> {"id": n} or {"error": "..."}
//   {"op": "parse", "date": n, "text": "..."}               -> {"millis": epoch ms} or {"error": "..."}
//   {"op": "zones"}                                         -> {"zones": [Joda's zone ids]}
//   {"op": "ilm", "name": "...", "json": "..."}             -> {"ok": true, ...} or {"error": "..."}

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import org.elasticsearch.grok.Grok;
import org.elasticsearch.grok.GrokBuiltinPatterns;
import org.elasticsearch.grok.MatcherWatchdog;
import org.elasticsearch.grok.PatternBank;
import org.joda.time.DateTimeZone;
import org.joda.time.format.DateTimeFormat;
import org.joda.time.format.DateTimeFormatter;
import org.joni.Matcher;
import org.joni.NameEntry;
import org.joni.Option;
import org.joni.Region;
import org.joni.Regex;

public final class GrokDateOracle {
    private final List<Regex> groks = new ArrayList<>();
    private final List<List<DateTimeFormatter>> dates = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        GrokDateOracle oracle = new GrokDateOracle();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        for (String line; (line = in.readLine()) != null; ) {
            List<Object> results = new ArrayList<>();
            for (Object request : (List<?>) Json.parse(line)) {
                Map<?, ?> op = (Map<?, ?>) request;
                try {
                    results.add(oracle.apply(op));
                } catch (RuntimeException e) {
                    results.add(Map.of("error", e.getClass().getSimpleName() + ": " + e.getMessage()));
                }
            }
            out.println(Json.write(results));
            out.flush();
        }
    }

    private Object apply(Map<?, ?> op) {
        switch ((String) op.get("op")) {
            case "grok": return Map.of("id", compileGrok((String) op.get("pattern"), (Map<?, ?>) op.get("definitions")));
            case "match": return single("captures", match(groks.get(number(op.get("grok"))), (String) op.get("text")));
            case "date": return Map.of("id", compileDate((List<?>) op.get("formats"), (String) op.get("timezone"),
                    (String) op.get("locale")));
            case "parse": return parse(dates.get(number(op.get("date"))), (String) op.get("text"));
            case "ilm": return IlmPolicyCheck.check((String) op.get("name"), (String) op.get("json"));
            case "zones": return Map.of("zones", new ArrayList<>(DateTimeZone.getAvailableIDs()));
            default: throw new IllegalArgumentException("unknown op " + op.get("op"));
        }
    }

    private static Map<String, Object> single(String key, Object value) {
        Map<String, Object> map = new LinkedHashMap<>();
        map.put(key, value);
        return map;
    }

    private static int number(Object value) {
        return ((Number) value).intValue();
    }

    /**
     * Logstash's grok filter expands %{NAME:field:type} from its pattern bank (logstash-patterns-core;
     * Logstash 9 defaults to the ECS v1 set) plus pattern_definitions into named groups called
     * "NAME:field:type", and compiles the result with Joni, Ruby syntax, UTF-8, option MULTILINE
     * (Ruby's MULTILINE: "." also matches a newline; "^" and "$" are line anchors in Ruby anyway).
     * Elasticsearch's grok library carries the same bank and expands the same way, naming groups
     * the same; it compiles without MULTILINE, so the expression is given a leading "(?m)", which
     * sets that option for the whole expression in Ruby syntax.
     */
    private int compileGrok(String pattern, Map<?, ?> definitions) {
        Map<String, String> extra = new LinkedHashMap<>();
        if (definitions != null) {
            definitions.forEach((k, v) -> extra.put((String) k, (String) v));
        }
        PatternBank bank = GrokBuiltinPatterns.get(GrokBuiltinPatterns.ECS_COMPATIBILITY_V1).extendWith(extra);
        Grok grok = new Grok(bank, "(?m)" + pattern, MatcherWatchdog.noop(), warning -> {
            throw new IllegalArgumentException("regex warning: " + warning);
        });
        groks.add(grok.getCompiledExpression());
        return groks.size() - 1;
    }

    /**
     * Logstash's grok searches the message (unanchored search; the pattern anchors itself) and
     * sets one field per named group that took part; with named_captures_only (default) groups
     * without a field name are dropped, with keep_empty_captures false (default) empty ones too.
     * Values stay strings here: the :float conversion is Ruby's Float (a 64-bit double), which
     * the Python side applies; Elasticsearch's grok would convert to a 32-bit float.
     */
    private static Map<String, String> match(Regex regex, String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        Matcher matcher = regex.matcher(bytes);
        if (matcher.search(0, bytes.length, Option.DEFAULT) < 0) {
            return null;
        }
        Region region = matcher.getEagerRegion();
        Map<String, String> captures = new LinkedHashMap<>();
        for (Iterator<NameEntry> it = regex.namedBackrefIterator(); it.hasNext(); ) {
            NameEntry entry = it.next();
            String[] name = new String(entry.name, entry.nameP, entry.nameEnd - entry.nameP, StandardCharsets.UTF_8)
                    .split(":");
            if (name.length < 2) {
                continue;
            }
            for (int group : entry.getBackRefs()) {
                int begin = region.getBeg(group), end = region.getEnd(group);
                if (begin >= 0 && end > begin) {
                    String field = name[1];
                    String type = name.length > 2 ? ":" + name[2] : "";
                    captures.put(field + type, new String(bytes, begin, end - begin, StandardCharsets.UTF_8));
                }
            }
        }
        return captures;
    }

    /**
     * Logstash's date filter parses each format with Joda-Time: DateTimeFormat.forPattern(format),
     * withZone(the timezone option), withLocale(the locale option, else the JVM default), then
     * parseMillis, which refuses trailing text and a local time that does not exist in the zone
     * (a DST gap): the filter then tags the event _dateparsefailure.
     */
    private int compileDate(List<?> formats, String timezone, String locale) {
        DateTimeZone zone = DateTimeZone.forID(timezone);
        Locale chosen = locale == null ? Locale.getDefault() : Locale.forLanguageTag(locale);
        List<DateTimeFormatter> parsers = new ArrayList<>();
        for (Object format : formats) {
            parsers.add(DateTimeFormat.forPattern((String) format).withZone(zone).withLocale(chosen));
        }
        dates.add(parsers);
        return dates.size() - 1;
    }

    private static Map<String, Object> parse(List<DateTimeFormatter> parsers, String text) {
        String failure = "no format";
        for (DateTimeFormatter parser : parsers) {
            try {
                return Map.of("millis", parser.parseMillis(text));
            } catch (IllegalArgumentException e) {
                failure = e.getMessage();
            }
        }
        return Map.of("error", failure);
    }
}
