%% bench_fanin — P producer processes each send the integers 1..N/P to one
%% sink, which counts and sums them and reports when all have arrived.
-module(bench_fanin).
-export([main/1]).

main(Args) ->
    P = bench_common:arg(Args, 1, 4),
    N = bench_common:arg(Args, 2, 4000000),
    Each = N div P,
    Total = Each * P,
    Main = self(),
    Sink = spawn(fun() -> sink(Main, Total, 0, 0) end),
    Producers = [spawn(fun() -> receive go -> produce(Sink, 1, Each) end end)
                 || _ <- lists:seq(1, P)],
    T0 = bench_common:now_s(),
    [Pid ! go || Pid <- Producers],
    Sum = receive {sum, S} -> S
          after 600000 -> bench_common:fail("fanin: timed out", [])
          end,
    Secs = bench_common:now_s() - T0,
    Want = P * (Each * (Each + 1) div 2),
    Sum =:= Want orelse bench_common:fail("fanin: sum ~p, expected ~p", [Sum, Want]),
    bench_common:result("fanin", Total, Secs, "msgs_per_s", Total / Secs,
                        "p=" ++ integer_to_list(P)).

produce(Sink, I, Each) when I =< Each ->
    Sink ! I,
    produce(Sink, I + 1, Each);
produce(_, _, _) ->
    ok.

sink(Main, Total, Total, Sum) ->
    Main ! {sum, Sum};
sink(Main, Total, Count, Sum) ->
    receive
        I -> sink(Main, Total, Count + 1, Sum + I)
    end.
