package graphql

import (
	"context"

	"github.com/agentd/agentd/aip"
	gen "github.com/agentd/agentd/transport/graphql/internal/generated"
)

type subscriptionResolver struct{ s *Resolver }

// stream subscribes to topic and forwards each record that convert maps
// (convert answers nil for records the subscriber's filter drops) until ctx
// is done or the source closes.
func stream[T any](ctx context.Context, src EventSource, topic string, convert func(any) *T) (<-chan *T, error) {
	if src == nil {
		return nil, errNoEvents
	}
	in := src.Subscribe(ctx, topic)
	out := make(chan *T, 16)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-in:
				if !ok {
					return
				}
				v := convert(e.Record)
				if v == nil {
					continue
				}
				select {
				case out <- v:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

func (r subscriptionResolver) OnAipProofExchangeUpdated(ctx context.Context, f *gen.AIPProofExchangesFilter) (<-chan *gen.AIPProofExchange, error) {
	filter := proofFilterIn(f)
	return stream(ctx, r.s.Events, aip.TopicProofExchange, func(rec any) *gen.AIPProofExchange {
		if x, ok := rec.(*aip.ProofExchange); ok && matchProof(filter, x) {
			return proofExchangeOut(x)
		}
		return nil
	})
}

func (r subscriptionResolver) OnAipCredentialExchangeUpdated(ctx context.Context, f *gen.AIPCredentialExchangesFilter) (<-chan *gen.AIPCredentialExchange, error) {
	filter := credExFilterIn(f)
	return stream(ctx, r.s.Events, aip.TopicCredentialExchange, func(rec any) *gen.AIPCredentialExchange {
		if x, ok := rec.(*aip.CredentialExchange); ok && matchCredEx(filter, x) {
			return credentialExchangeOut(x)
		}
		return nil
	})
}

func (r subscriptionResolver) OnAipConnectionExchangeUpdated(ctx context.Context, f *gen.AIPConnectionExchangesFilter) (<-chan *gen.AIPConnectionExchange, error) {
	filter := connExFilterIn(f)
	return stream(ctx, r.s.Events, aip.TopicConnectionExchange, func(rec any) *gen.AIPConnectionExchange {
		if x, ok := rec.(*aip.ConnectionExchange); ok && matchConnEx(filter, x) {
			return connectionExchangeOut(x)
		}
		return nil
	})
}

// OnBasicMessageReceived emits inbound basic messages (of one connection
// when connectionId is given).
func (r subscriptionResolver) OnBasicMessageReceived(ctx context.Context, connectionID *string) (<-chan *gen.BasicMessage, error) {
	return stream(ctx, r.s.Events, aip.TopicBasicMessage, func(rec any) *gen.BasicMessage {
		m, ok := rec.(*aip.BasicMessage)
		if !ok || m.Direction != aip.Inbound || (connectionID != nil && *connectionID != m.ConnectionID) {
			return nil
		}
		return basicMessageOut(m)
	})
}
